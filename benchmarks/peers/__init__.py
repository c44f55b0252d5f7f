"""Peers written here for the benchmarks (models and loops as their own users write them), imported by the scripts one
folder up."""

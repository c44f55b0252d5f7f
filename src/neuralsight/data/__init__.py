"""Datasets: the catalog (where every dataset lives) and loaders for images, text, volumes and series."""

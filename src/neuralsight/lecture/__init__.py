"""The lecture's own experiments and calculations that are not tasks (run by the CLI)."""

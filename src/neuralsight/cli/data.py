"""``neuralsight data list | verify NAME | fetch NAME``: what data is where, check it, get it."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, guard, note, print_table

data_app = typer.Typer(no_args_is_help=True, help="Datasets: where they are, fetch them, verify them.")
app.add_typer(data_app, name="data", rich_help_panel="Data and app")


@data_app.command("list")
def list_(data: Path | None = typer.Option(None, "--data", help="Also look in this folder first."),
          rehash: bool = typer.Option(False, "--rehash", help="Hash folder trees again even if unchanged.")):
    """Every dataset: where it was found (or how to get it), verified, size, what it is for.

    Fixed files are hashed every time; folder trees are hashed once and then trusted while their sizes and
    modification times do not change (`--rehash` or `verify NAME` hash them again).
    """
    with guard():
        from neuralsight.data import catalog
        from neuralsight.data.download import human_size

        rows, missing, failed = [], [], []
        for name, entry in catalog.CATALOG.items():
            folder = catalog.find(name, data)
            if folder is None:
                rows.append([name, "missing", "-", "-", entry.used_for])
                missing.append(entry)
                continue
            result = catalog.check(name, folder, full=rehash)
            mark = {"yes": "yes", "count": "count only"}.get(result.verified, "no")
            rows.append([name, str(folder), mark, human_size(result.size), entry.used_for])
            if result.problems:
                failed.append(result)
        print_table(["name", "where", "verified", "size", "used for"], rows)
        for result in failed:
            note(f"{result.name}: {'; '.join(result.problems)} (details: neuralsight data verify {result.name})",
                 style="red")
        for entry in missing:
            echo(f"{entry.name} missing. {entry.obtain}")
            if entry.downloads:
                echo(f"  url: {', '.join(d.url for d in entry.downloads)}")
        if missing:
            echo("Then pass --data DIR or set NEURALSIGHT_DATA (the folder holding <name>/).")


@data_app.command("verify")
def verify(name: str = typer.Argument(..., help="Dataset name (see `neuralsight data list`)."),
           data: Path | None = typer.Option(None, "--data", help="The dataset folder, or a folder holding it.")):
    """Check the layout, file counts and every checksum of one dataset; exit 2 on any problem."""
    with guard():
        from neuralsight.data import catalog
        from neuralsight.engine import progress
        from neuralsight.errors import DataError

        catalog.get(name)
        folder = catalog.find(name, data)
        if folder is None:
            raise DataError(catalog.missing_message(name, data))
        with progress.status(f"hashing {name}"):
            result = catalog.check(name, folder, full=True)
        for line in result.notes:
            echo(f"  {line}")
        if result.problems:
            for problem in result.problems:
                note(f"  {problem}", style="red")
            raise DataError(f"dataset '{name}' at {folder} failed verification ({len(result.problems)} problems)",
                            f"fetch a fresh copy with `{catalog.fetch_command(name)}` or see its PROVENANCE")
        how = "checksums match" if result.verified == "yes" else "layout and file counts match (no checksums known)"
        echo(f"ok {name} at {folder} ({result.layout}): {how}")


@data_app.command("fetch")
def fetch(name: str = typer.Argument(..., help="Dataset name (see `neuralsight data list`)."),
          force: bool = typer.Option(False, "--force", help="Download even if a copy is found."),
          timeout: float = typer.Option(30.0, "--timeout", help="Seconds a connection may stay silent."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")):
    """Download a dataset into ~/.cache/neuralsight/NAME (or $NEURALSIGHT_CACHE/NAME), resumable."""
    with guard():
        from neuralsight.data import catalog
        from neuralsight.data.download import fetch_dataset
        from neuralsight.errors import DataError
        from neuralsight.io import cache_dir

        entry = catalog.get(name)
        found = catalog.find(name)
        if found is not None and not force:
            echo(f"{name} is already at {found} (use --force to download into the cache anyway)")
            return
        if not entry.downloads:
            raise DataError(catalog.missing_message(name), "this dataset has no direct download")
        try:
            target = fetch_dataset(entry, cache_dir(name), progress=progress, timeout=timeout)
        except DataError as e:
            raise DataError(catalog.missing_message(name, download_error=e.message), e.hint) from None
        echo(f"{name}: {target}")

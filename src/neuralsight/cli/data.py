"""``neuralsight data list | verify NAME | fetch NAME... [--demo]``: what data is where, check it, get it."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, err, guard, note, print_table

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
def fetch(names: list[str] = typer.Argument(None, help="Dataset names (see `neuralsight data list`)."),
          demo: bool = typer.Option(False, "--demo", help="Also every dataset `neuralsight demo` trains on "
                                                          "(what `make demo` runs first)."),
          force: bool = typer.Option(False, "--force", help="Download into the cache even where a copy is found."),
          timeout: float = typer.Option(30.0, "--timeout", help="Seconds a connection may stay silent."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")):
    """Get the datasets that are missing; a copy already found is left as it is.

    A dataset with a Debian package (Fashion-MNIST: dataset-fashion-mnist) is installed with apt-get when this
    runs as root on a machine with apt; as another user the exact `sudo apt-get install` line is printed.
    Otherwise, or when that fails, the catalog's checksummed, resumable download goes into
    ~/.cache/neuralsight/NAME (or $NEURALSIGHT_CACHE/NAME). Exit code 2 when any dataset could not be had
    (each one's reason on its own line); the others are still fetched.
    """
    with guard():
        from neuralsight.cli.train import demo_datasets
        from neuralsight.data import catalog
        from neuralsight.errors import UserError

        wanted = list(dict.fromkeys([*(names or []), *(demo_datasets() if demo else [])]))
        if not wanted:
            raise UserError("name the datasets to fetch, or pass --demo", "e.g. neuralsight data fetch oxford-pets")
        for name in wanted:
            catalog.get(name)  # an unknown name fails before anything is fetched
        failures = []
        for name in wanted:
            try:
                _fetch_one(name, force, timeout, progress)
            except UserError as e:
                failures.append(e)
        for e in failures:
            err(str(e))
        if failures:
            raise typer.Exit(2)


def _fetch_one(name: str, force: bool, timeout: float, progress: bool) -> None:
    """Find, install or download one dataset and say which; a DataError when it cannot be had."""
    from neuralsight.data import catalog
    from neuralsight.data.download import fetch_dataset
    from neuralsight.errors import DataError
    from neuralsight.io import cache_dir

    entry = catalog.get(name)
    found = catalog.find(name)
    if found is not None and not force:
        echo(f"{name} is already at {found}")
        return
    if entry.system_package and not force:
        presence = catalog.ensure_present(name, download=True, progress=progress, timeout=timeout)
        how = {"apt": f"installed with `{' '.join(presence.commands[-1])}`" if presence.commands else "installed",
               "download": "downloaded"}.get(presence.how, presence.how)
        echo(f"{name}: {how}: {presence.folder}")
        for line in presence.notes:
            echo(f"  {line}")
        if presence.advice:
            echo(f"  a system-wide copy for every user instead: {presence.advice}")
        return
    if not entry.downloads:
        raise DataError(catalog.missing_message(name), "this dataset has no direct download")
    try:  # a dataset without a system package: the download, whose errors say how to resume it
        target = fetch_dataset(entry, cache_dir(name), progress=progress, timeout=timeout)
    except DataError as e:
        raise DataError(catalog.missing_message(name, download_error=e.message), e.hint) from None
    echo(f"{name}: downloaded: {target}")

"""`neuralsight data list | fetch NAME | verify NAME`: what data is where, get it, check it."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(no_args_is_help=True, help="Datasets: where they are, fetch them, verify them.")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


@data_app.command("list")
def list_(data: Path | None = typer.Option(None, "--data", help="Also look in this folder first."),
          rehash: bool = typer.Option(False, "--rehash", help="Hash folder trees again even if unchanged.")):
    """Every dataset: where it was found (or how to get it), verified, size, what it is for.

    Fixed files are hashed every time; folder trees are hashed once and then trusted while their sizes and
    modification times do not change (`--rehash` or `verify NAME` hash them again).
    """
    from neuralsight.cli import guard

    with guard():
        from rich.table import Table

        from neuralsight.data import catalog
        from neuralsight.data.download import human_size

        table = Table("name", "where", "verified", "size", "used for", title="neuralsight datasets")
        missing, failed = [], []
        for name, entry in catalog.CATALOG.items():
            folder = catalog.find(name, data)
            if folder is None:
                table.add_row(name, "[yellow]missing[/]", "-", "-", entry.used_for)
                missing.append(entry)
                continue
            result = catalog.check(name, folder, full=rehash)
            mark = {"yes": "[green]yes[/]", "count": "[yellow]count only[/]"}.get(result.verified, "[red]no[/]")
            table.add_row(name, str(folder), mark, human_size(result.size), entry.used_for)
            if result.problems:
                failed.append(result)
        console = _console()
        console.print(table)
        for result in failed:
            console.print(f"[bold]{result.name}[/] [red]{'; '.join(result.problems)}[/] "
                          f"(details: neuralsight data verify {result.name})", soft_wrap=True)
        for entry in missing:
            console.print(f"[bold]{entry.name}[/] missing. {entry.obtain}", soft_wrap=True)
            if entry.downloads:
                console.print(f"  url: {', '.join(d.url for d in entry.downloads)}", soft_wrap=True)
        if missing:
            console.print("Then pass --data DIR or set NEURALSIGHT_DATA (the folder holding <name>/).", soft_wrap=True)


@data_app.command("verify")
def verify(name: str = typer.Argument(..., help="Dataset name (see `neuralsight data list`)."),
           data: Path | None = typer.Option(None, "--data", help="The dataset folder, or a folder holding it.")):
    """Check the layout, file counts and every checksum of one dataset; exit 2 on any problem."""
    from neuralsight.cli import guard

    with guard():
        from neuralsight.data import catalog
        from neuralsight.errors import DataError

        catalog.get(name)
        folder = catalog.find(name, data)
        if folder is None:
            raise DataError(catalog.missing_message(name, data))
        console = _console()
        with console.status(f"hashing {name}..."):
            result = catalog.check(name, folder, full=True)
        for note in result.notes:
            console.print(f"  {note}", soft_wrap=True)
        if result.problems:
            for problem in result.problems:
                console.print(f"  [red]{problem}[/]", soft_wrap=True)
            raise DataError(f"dataset '{name}' at {folder} failed verification ({len(result.problems)} problems)",
                            f"fetch a fresh copy with `{catalog.fetch_command(name)}` or see its PROVENANCE")
        how = "checksums match" if result.verified == "yes" else "layout and file counts match (no checksums known)"
        console.print(f"[green]ok[/] {name} at {folder} ({result.layout}): {how}", soft_wrap=True)


@data_app.command("fetch")
def fetch(name: str = typer.Argument(..., help="Dataset name (see `neuralsight data list`)."),
          force: bool = typer.Option(False, "--force", help="Download even if a copy is found."),
          timeout: float = typer.Option(30.0, "--timeout", help="Seconds a connection may stay silent."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")):
    """Download a dataset into ~/.cache/neuralsight/NAME (or $NEURALSIGHT_CACHE/NAME), resumable."""
    from neuralsight.cli import guard

    with guard():
        from neuralsight.data import catalog
        from neuralsight.data.download import fetch_dataset
        from neuralsight.errors import DataError
        from neuralsight.io import cache_dir

        entry = catalog.get(name)
        found = catalog.find(name)
        if found is not None and not force:
            typer.echo(f"{name} is already at {found} (use --force to download into the cache anyway)")
            return
        if not entry.downloads:
            raise DataError(catalog.missing_message(name), "this dataset has no direct download")
        try:
            target = fetch_dataset(entry, cache_dir(name), progress=progress, timeout=timeout)
        except DataError as err:
            raise DataError(catalog.missing_message(name, download_error=err.message),
                            err.hint) from None
        typer.echo(f"{name}: {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

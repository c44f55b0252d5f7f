"""``neuralsight app``: the browser UI over saved runs."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.cli.core import app, guard


@app.command("app", rich_help_panel="Data and app")
def app_command(root: Path = typer.Option(Path("runs"), "--root", help="Runs folder to browse."),
                host: str = typer.Option("127.0.0.1", "--host"),
                port: int = typer.Option(7860, "--port"),
                share: bool = typer.Option(False, "--share/--no-share", help="Gradio public link.")):
    """Open the interactive app in a browser: browse runs, apply them to your own files."""
    with guard():
        from neuralsight.app import launch

        launch(root, host=host, port=port, share=share)

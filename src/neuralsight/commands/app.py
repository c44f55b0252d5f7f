"""`neuralsight app`: the browser UI over saved runs."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("app")
    def app_command(root: Path = typer.Option(Path("runs"), "--root", help="Runs folder to browse."),
                    host: str = typer.Option("127.0.0.1", "--host"),
                    port: int = typer.Option(7860, "--port"),
                    share: bool = typer.Option(False, "--share/--no-share", help="Gradio public link.")):
        """Open the interactive app in a browser: browse runs, apply them to your own files."""
        from neuralsight.cli import guard

        with guard():
            from neuralsight.app import build

            build(root).launch(server_name=host, server_port=port, share=share)

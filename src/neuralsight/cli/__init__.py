"""The ``neuralsight`` command line. Every command is thin: parse, call the library, print what it returns.

Heavy modules (torch, matplotlib, nibabel, captum, gradio) are imported inside commands, so
``neuralsight --help`` answers at once. Commands by family: ``cli/train.py`` (train TASK, demo),
``cli/runs.py`` (eval, predict, generate, explain, report, runs, models), ``cli/lecture.py`` (filters, params,
position), ``cli/data.py`` (data list/verify/fetch), ``cli/app.py`` (app).
"""

from __future__ import annotations

import sys

import typer

import neuralsight.tasks  # noqa: F401  (registers every task)
from neuralsight.cli import app as _app_command  # noqa: F401
from neuralsight.cli import data as _data  # noqa: F401
from neuralsight.cli import export as _export  # noqa: F401
from neuralsight.cli import lecture as _lecture  # noqa: F401
from neuralsight.cli import runs as _runs  # noqa: F401
from neuralsight.cli.core import STATE, app, err
from neuralsight.cli.train import register_train_commands
from neuralsight.errors import UserError


def _version(value: bool):
    if value:
        from neuralsight import __version__

        typer.echo(f"neuralsight {__version__}")
        raise typer.Exit()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks for errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    STATE["verbose"] = verbose


register_train_commands()


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # outside the training loop (which saves first), SIGTERM ends like Ctrl-C


def main() -> None:
    from neuralsight.engine.distributed import exit_process

    code = 0
    try:
        _run()
    except SystemExit as e:  # Typer ends every command this way
        code = e.code
    exit_process(code)  # sys.exit, or os._exit in a process that joined a process group (see its docstring)


def _run() -> None:
    import signal

    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        app()
    except UserError as e:  # raised outside a guarded command (e.g. while building the app)
        err(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)


__all__ = ["app", "main"]

"""What every command shares: the Typer app, error handling and exit codes, and plain-text output.

Library code returns data; this package is the only place that prints it and chooses exit codes. A
:class:`UserError` prints one red line (exit 2, ``--verbose`` adds the traceback); an interrupted training run
exits ``128 + signal``. Everything printed that comes from data (paths, names, messages) is escaped, never read
as rich markup, and tables are plain aligned text that never cuts a name or a path.
"""

from __future__ import annotations

import contextlib
import sys

import typer

from neuralsight.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Neural-network signal and image processing you can run, measure and see.",
                  context_settings={"help_option_names": ["-h", "--help"]})
STATE = {"verbose": False}


def err(message: str) -> None:
    """One red ``error:`` line on stderr; ``message`` is data, never markup."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")


def note(message: str, style: str = "yellow") -> None:
    """A coloured line on stderr (warnings, status); ``message`` is data, never markup."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[{style}]{escape(message)}[/]")


@contextlib.contextmanager
def guard():
    """Turn user errors into one red line and exit code 2; an interrupted run into 128 + signal."""
    from neuralsight.tasks.base import Interrupted

    try:
        yield
    except UserError as e:
        if STATE["verbose"]:
            import traceback

            traceback.print_exc()
        err(str(e))
        raise typer.Exit(e.exit_code) from None
    except Interrupted as e:
        note(f"{e}. Resume with: neuralsight train {e.task} --resume {e.run_dir}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(130) from None


def echo(text: str = "") -> None:
    typer.echo(text)


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


@contextlib.contextmanager
def training_progress(flag: bool | None):
    """How ``train`` and ``demo`` report while they work, from ``--progress/--no-progress`` and the streams.

    ``--no-progress``: nothing. Otherwise, when standard output is not a terminal (``| tee log``, ``> log``,
    nohup, CI, a batch scheduler's log file), one plain line per evaluation and per long step goes to stdout,
    next to the headline and the run directory printed at the end, because stdout is the stream such logs
    keep (``| tee`` sees nothing of stderr). On a terminal, the engine's default: a live bar on stderr (plain
    lines when stderr itself is redirected). Commands that print data (``eval --json``, ``runs``, ``predict``)
    never take this path; their progress stays on stderr.
    """
    from neuralsight.engine import progress

    if flag is False:
        progress.set_mode("off")
    elif not is_terminal(sys.stdout):
        progress.set_mode("plain", stream=sys.stdout)
    try:
        yield
    finally:
        progress.set_mode("auto")


def format_value(value) -> str:
    """A cell: floats to 4 significant decimals, lists of dicts and dicts folded to one short line."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_value(v) if not isinstance(v, dict) else " ".join(format_value(x) for x in v.values())
                         for v in value)
    return str(value)


def print_table(headers: list[str], rows: list[list], file=None) -> None:
    """Plain aligned columns (like ``docker ps``): nothing is cut or wrapped, so every path can be copied."""
    file = file or sys.stdout
    cells = [[format_value(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    bold = is_terminal(file)

    def line(parts: list[str]) -> str:
        return "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()

    head = line(headers)
    print(f"\033[1m{head}\033[0m" if bold else head, file=file)
    for r in cells:
        print(line(r), file=file)


def print_records(records: list[dict], as_json: bool, first: str = "input") -> int:
    """Results of ``predict`` (one dict per input) as JSON or a table; failed inputs as error lines on stderr.

    Returns the exit code: 2 when any input failed, else 0.
    """
    import json

    if as_json:
        typer.echo(json.dumps(records, indent=2, default=str))
    else:
        good = [r for r in records if "error" not in r]
        headers: list[str] = []
        for r in good:
            headers += [k for k in r if k not in headers]
        if first in headers:
            headers.remove(first)
            headers.insert(0, first)
        if good:
            print_table(headers, [[r.get(h) for h in headers] for r in good])
    for r in records:
        if "error" in r:
            where = str(r.get(first) or "")
            err(r["error"] if not where or where in r["error"] else f"{where}: {r['error']}")
    return 2 if any("error" in r for r in records) else 0


def print_metrics(metrics: dict, as_json: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps(metrics, indent=2, default=float))
        return
    rows = [[k, v] for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    print_table(["metric", "value"], rows)

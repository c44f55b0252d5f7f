"""Commands over saved runs: ``eval``, ``predict``, ``generate``, ``explain``, ``report``, ``runs``, ``models``.

Every command opens its run with :meth:`SavedRun.open` (a path, ``latest`` or ``latest:TASK``), calls the task,
and prints what it returns the same way for every task.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, guard, print_metrics, print_records, print_table

RUN_HELP = "Run directory, or latest / latest:TASK (the newest run under runs/)."


def _open(run: str, data: Path | None = None, root: Path | None = None):
    from neuralsight.tasks.base import SavedRun

    return SavedRun.open(run, data_dir=data, root=root)


def _options(saved, kind: str, command: str, set_: list[str], **shortcuts):
    from neuralsight.config import parse_overrides
    from neuralsight.tasks.base import parse_options

    values = dict(parse_overrides(list(set_)))
    values.update({k: v for k, v in shortcuts.items() if v is not None})
    return parse_options(getattr(saved.task, kind), values, command, saved.task.name)


def _need(saved, method: str, command: str):
    fn = getattr(saved.task, method, None)
    if fn is None:
        from neuralsight.errors import UserError

        raise UserError(f"`neuralsight {command}` does not apply to a '{saved.task.name}' run")
    return fn


@app.command("eval", rich_help_panel="Use a saved run")
def eval_(run: str = typer.Argument(..., help=RUN_HELP),
          split: str | None = typer.Option(None, "--split", help="test or val (default: the run's first; "
                                                                 "textgen has val only)."),
          data: Path | None = typer.Option(None, "--data", help="Folder holding the data."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Evaluate a saved run's best checkpoint on one split of its data."""
    with guard():
        from neuralsight.engine import progress
        from neuralsight.errors import UserError

        saved = _open(run, data)
        split = split or saved.task.splits[0]
        if split not in saved.task.splits:
            note = getattr(saved.task, "split_note", "")
            raise UserError(f"--split {split} does not apply to a {saved.task.name} run{': ' + note if note else ''}",
                            f"use --split {' or '.join(saved.task.splits)}")
        with progress.status(f"evaluating {saved.path} on the {split} split"):
            metrics = saved.task.evaluate(saved, split)
        print_metrics({"split": split, **metrics}, as_json)


@app.command(rich_help_panel="Use a saved run")
def predict(run: str = typer.Argument(..., help=RUN_HELP),
            inputs: list[Path] = typer.Argument(None, help="Images, volumes or CSV files (or folders of them)."),
            out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/predictions)."),
            as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
            horizon: int | None = typer.Option(None, "--horizon", help="Forecast horizon (forecast runs)."),
            tile: int | None = typer.Option(None, "--tile", help="Tile size for large inputs (segment)."),
            top_k: int | None = typer.Option(None, "--top-k", help="Classes to show (classify)."),
            set_: list[str] = typer.Option([], "--set", help="Task option key=value (repeatable); "
                                                             "an unknown key lists the task's options.")):
    """Apply a saved run to new inputs; exit code 2 when any input failed (the others are still written)."""
    with guard():
        saved = _open(run)
        options = _options(saved, "PredictOptions", "predict", set_, horizon=horizon, tile=tile, top_k=top_k)
        records = saved.task.predict(saved, list(inputs or []), Path(out or saved.path / "predictions"), options)
        code = print_records(records, as_json)
    if code:
        raise typer.Exit(code)


@app.command(rich_help_panel="Use a saved run")
def generate(run: str = typer.Argument(..., help=RUN_HELP + " A textgen run."),
             seed: str | None = typer.Option(None, "--seed", help="Text to continue (default: from the run's text)."),
             length: int | None = typer.Option(None, "--length", help="Characters to generate."),
             temperature: float | None = typer.Option(None, "--temperature"),
             top_k: int | None = typer.Option(None, "--top-k", help="Sample from the k likeliest characters (0: all)."),
             rng_seed: int | None = typer.Option(None, "--rng-seed", help="Repeatable sampling.")):
    """Continue a seed text with a saved character model (streams to the terminal)."""
    with guard():
        saved = _open(run)
        fn = _need(saved, "generate", "generate")
        options = _options(saved, "GenerateOptions", "generate", [], seed=seed, length=length,
                           temperature=temperature, top_k=top_k, rng_seed=rng_seed)
        for text in fn(saved, options):  # everything was validated before the first character
            sys.stdout.write(text)
            sys.stdout.flush()
        sys.stdout.write("\n")


@app.command(rich_help_panel="Use a saved run")
def explain(run: str = typer.Argument(..., help=RUN_HELP),
            inputs: list[Path] = typer.Argument(None, help="Inputs to explain (images, volumes, CSV)."),
            text: str | None = typer.Option(None, "--text", help="Text passage (textgen runs)."),
            method: str | None = typer.Option(None, "--method", help="Methods, comma-separated (the task lists "
                                                                      "its own when one does not apply)."),
            index: int | None = typer.Option(None, "--index", help="Test-split item to explain."),
            out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/explain)."),
            set_: list[str] = typer.Option([], "--set", help="Task option key=value (repeatable).")):
    """Show what a saved model looks at: attributions, feature maps, gates; writes figures and lists them."""
    with guard():
        from neuralsight.engine import progress

        saved = _open(run)
        fn = _need(saved, "explain", "explain")
        options = _options(saved, "ExplainOptions", "explain", set_, text=text, method=method, index=index)
        with progress.status("explaining"):
            paths = fn(saved, list(inputs or []), Path(out or saved.path / "explain"), options)
        for p in paths:
            echo(str(p))


@app.command(rich_help_panel="Use a saved run")
def report(run: str = typer.Argument(..., help=RUN_HELP)):
    """Re-render a run's report.html from its files."""
    with guard():
        from neuralsight.tasks.base import write_report

        saved = _open(run)
        echo(str(write_report(saved.task, saved.path)))


@app.command(rich_help_panel="Use a saved run")
def runs(root: Path | None = typer.Option(None, "--root", help="Runs folder (default: $NEURALSIGHT_RUNS, else "
                                                                "runs/, as `latest` reads it)."),
         task: str | None = typer.Option(None, "--task", help="Only runs of this task."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """List saved runs: date, task, headline metric (and its split), steps, how training stopped, path."""
    with guard():
        import json

        from neuralsight.engine.runs import list_runs, read_summary

        rows = []
        import os

        root = Path(root or os.environ.get("NEURALSIGHT_RUNS") or "runs")
        for path in list_runs(root):
            s = read_summary(path)
            if task and s.get("task", path.parent.name) != task:
                continue
            head = s.get("headline") or {}
            fit = s.get("fit") or {}
            value = head.get("value")
            rows.append({"date": s.get("started") or _stamp_date(path.name), "task": s.get("task", path.parent.name),
                         "headline": head.get("name") or "-",
                         "value": value if isinstance(value, (int, float)) else None,
                         "split": head.get("split") or "-", "steps": fit.get("step"),
                         "stopped_by": fit.get("stopped_by", "not finished"),
                         "train_s": fit.get("train_seconds"), "run": str(path)})
        rows.sort(key=lambda r: r["date"])
        if as_json:
            echo(json.dumps(rows, indent=2))
        elif not rows:
            echo(f"no runs under {root}")
        else:
            headers = list(rows[0])
            print_table(headers, [[r[h] for h in headers] for r in rows])


def _stamp_date(name: str) -> str:
    """``20261201-215734-name`` -> ``2026-12-01 21:57:34``."""
    s = name[:15]
    if len(s) == 15 and s[8] == "-" and s.replace("-", "").isdigit():
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[9:11]}:{s[11:13]}:{s[13:15]}"
    return "-"


@app.command(rich_help_panel="Use a saved run")
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """List the registered models (the names `--set model.name=...` and checkpoints use)."""
    with guard():
        import json

        from neuralsight.models import list_models

        rows = [{"model": name, "description": desc} for name, desc in list_models().items()]
        if as_json:
            echo(json.dumps(rows, indent=2))
        else:
            print_table(["model", "description"], [[r["model"], r["description"]] for r in rows])

"""``neuralsight train TASK`` for every registered task, and ``neuralsight demo``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, guard, note, print_table, training_progress

train_app = typer.Typer(no_args_is_help=True, help="Train a model; writes runs/<task>/<stamp>-<name>/.")
app.add_typer(train_app, name="train", rich_help_panel="Train")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def shortcut_overrides(**flags) -> list[str]:
    """``--epochs 3`` and friends as the ``--set`` items they stand for (``None``: not given)."""
    out = []
    data_keys = {"dataset": "data.dataset", "data": "data.data_dir"}
    for key, value in flags.items():
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        out.append(f"{data_keys.get(key, 'train.' + key)}={_toml(value)}")
    if flags.get("max_time") is not None and flags.get("epochs") is None and flags.get("steps") is None:
        out += ["train.epochs=0", "train.steps=0"]  # `--max-time` alone: train for this long, the schedule spans it
    return out


def headline_line(run_dir: Path) -> str:
    from neuralsight.engine.runs import read_summary

    head = read_summary(run_dir).get("headline") or {}
    value = head.get("value")
    if not isinstance(value, (int, float)):
        return ""
    split = f" ({head['split']} split)" if head.get("split") else ""
    return f"{head.get('name')} {value:.4f}{split}"


MAX_TIME_HELP = ("Wall-clock budget (s) of the training loop with its validation evaluations and saves, which "
                 "end within 2 % of it; loading data, the final test evaluation and the report come on top. "
                 "Alone, the LR schedule spans it.")
PROGRESS_HELP = ("Live bar on a terminal; when stdout is not a terminal (| tee, > log, nohup, CI), one plain line "
                 "per evaluation on stdout. --no-progress: silent.")


def _make_train_command(task_name: str):
    def command(
        config: Path | None = typer.Option(None, "--config", help="TOML config file (over the preset)."),
        preset: str | None = typer.Option(None, "--preset", help="Preset name (neuralsight/configs/NAME.toml)."),
        set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.lr=0.002 (repeatable)."),
        quick: bool = typer.Option(False, "--quick", help="Tiny budget for smoke runs and the demo."),
        dataset: str | None = typer.Option(None, "--dataset", help="Catalog dataset or 'folder'."),
        data: Path | None = typer.Option(None, "--data", help="Folder holding the data (overrides lookup)."),
        epochs: int | None = typer.Option(None, "--epochs"),
        steps: int | None = typer.Option(None, "--steps", help="Optimizer steps (overrides epochs)."),
        max_time: float | None = typer.Option(None, "--max-time", help=MAX_TIME_HELP),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        lr: float | None = typer.Option(None, "--lr"),
        device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
        precision: str | None = typer.Option(None, "--precision", help="auto, fp32, bf16 or fp16."),
        compile: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile the model."),
        seed: int | None = typer.Option(None, "--seed"),
        deterministic: bool | None = typer.Option(None, "--deterministic/--nondeterministic"),
        resume: Path | None = typer.Option(None, "--resume", help="Continue a run directory."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: from the data or the preset)."),
        out: Path | None = typer.Option(None, "--out", help="Runs root folder (default: runs/)."),
        progress: bool | None = typer.Option(None, "--progress/--no-progress", help=PROGRESS_HELP),
    ):
        from neuralsight.tasks.base import train

        with guard(), training_progress(progress):
            overrides = list(set_) + shortcut_overrides(
                epochs=epochs, steps=steps, max_time=max_time, batch_size=batch_size, lr=lr, device=device,
                precision=precision, compile=compile, seed=seed, deterministic=deterministic, progress=progress,
                dataset=dataset, data=data)
            run_dir = train(task_name, preset=preset, config_file=config, overrides=overrides, quick=quick,
                            resume=resume, name=name, out=out)
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
                head = headline_line(run_dir)
                if head:
                    echo(head)
                echo(f"run: {run_dir}\nreport: {run_dir / 'report.html'}")

    return command


def register_train_commands(only: tuple[str, ...] | None = None) -> None:
    """A ``train NAME`` command for every registered task (or those in ``only``)."""
    from neuralsight.tasks.base import get_task, list_tasks

    for name in only or list_tasks():
        train_app.command(name, help=get_task(name).help)(_make_train_command(name))


def demo_plan(tasks: list[str] | tuple = ()) -> list[tuple[str, str, str]]:
    """``(task, preset, label)`` of every run ``neuralsight demo`` makes (each task's demo presets, else its
    default preset), in order."""
    from neuralsight.tasks.base import get_task, list_tasks

    plan = []
    for name in list(tasks) or list_tasks():
        t = get_task(name)
        for preset in getattr(t, "demo_presets", None) or (t.preset,):
            plan.append((name, preset, name if preset == t.preset else f"{name} ({preset})"))
    return plan


def demo_datasets(tasks: list[str] | tuple = ()) -> list[str]:
    """The catalog datasets the demo's runs train on (``make demo`` fetches them first)."""
    from neuralsight.data.catalog import CATALOG
    from neuralsight.tasks.base import get_task, resolve_config

    names: list[str] = []
    for task, preset, _ in demo_plan(tasks):
        dataset = getattr(getattr(resolve_config(get_task(task), preset, quick=True), "data", None), "dataset", None)
        if dataset in CATALOG and dataset not in names:
            names.append(dataset)
    return names


@app.command(rich_help_panel="Train")
def demo(out: Path | None = typer.Option(None, "--out", help="Runs root (default: runs/)."),
         task: list[str] = typer.Option([], "--task", help="Only these tasks (repeatable)."),
         device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
         allow_missing: bool = typer.Option(False, "--allow-missing",
                                            help="Exit 0 even when a task was skipped for missing data."),
         progress: bool | None = typer.Option(None, "--progress/--no-progress", help=PROGRESS_HELP)):
    """Run every task with its quick preset(s) and write one combined report.html.

    Exit code 2 (after the table) when a task was skipped because its data is missing (`make demo` fetches
    it first: `neuralsight data fetch --demo`), 1 when a task failed.
    """
    with guard(), training_progress(progress):
        from neuralsight.engine import progress as report_progress
        from neuralsight.errors import MissingData, UserError
        from neuralsight.report.html import write_combined
        from neuralsight.tasks.base import Interrupted, get_task, train

        root = Path(out) if out is not None else Path("runs")
        demo_dir = root / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while demo_dir.exists():
            n += 1
            demo_dir = root / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        demo_dir.mkdir(parents=True)
        entries = []
        for name, preset, label in demo_plan(task):
            report_progress.line(f"demo: {label}")
            t0 = time.time()
            entry = {"task": name, "preset": preset, "label": label, "key": label.replace(" ", "-")
                     .replace("(", "").replace(")", "")}
            overrides = [f"train.device={_toml(device)}"] if device else []
            try:
                run_dir = train(name, preset=preset, overrides=overrides, quick=True, out=demo_dir)
            except MissingData as e:
                entries.append({**entry, "status": "skipped", "reason": str(e), "seconds": time.time() - t0})
                note(f"demo: {label} skipped: {e}")
                continue
            except Interrupted:
                raise
            except Exception as e:  # noqa: BLE001 - one broken task must not hide the others' results
                if not isinstance(e, UserError):
                    import traceback

                    traceback.print_exc()
                entries.append({**entry, "status": "failed", "reason": f"{type(e).__name__}: {e}",
                                "seconds": time.time() - t0})
                continue
            entries.append({**entry, "status": "ok", "run": str(run_dir), "headline": headline_line(run_dir),
                            "seconds": time.time() - t0, "sections": get_task(name).report(run_dir)})
        from neuralsight.lecture.ideas import lecture_sections

        classify_run = next((e["run"] for e in entries if e["task"] == "classify" and e["status"] == "ok"), None)
        with report_progress.status("drawing the lecture figures"):
            lecture = lecture_sections(demo_dir / "lecture", classify_run=classify_run)
        path = write_combined(demo_dir, entries, extra=lecture)
        print_table(["run", "status", "headline / reason", "time (s)"],
                    [[e["label"], e["status"], e.get("headline") or e.get("reason", ""), f"{e['seconds']:.1f}"]
                     for e in entries])
        echo(f"demo report: {path}")
        if any(e["status"] == "failed" for e in entries):
            raise typer.Exit(1)
        skipped = [e["label"] for e in entries if e["status"] == "skipped"]
        if skipped and not allow_missing:
            note(f"demo: {', '.join(skipped)} skipped for missing data (fetch it with `neuralsight data fetch --demo`, "
                 "or pass --allow-missing)")
            raise typer.Exit(2)

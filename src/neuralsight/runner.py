"""Glue between the CLI and the tasks: resolve the config, make the run directory, train, report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight import config as C
from neuralsight.errors import UserError


@dataclass
class TrainOptions:
    """Command-line options common to every `neuralsight train TASK`."""

    preset: str | None = None
    config_file: Path | None = None
    overrides: list[str] = field(default_factory=list)
    quick: bool = False
    resume: Path | None = None
    name: str | None = None
    out: Path | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    epochs: int | None = None
    steps: int | None = None
    max_time: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str | None = None
    precision: str | None = None
    compile: bool | None = None
    seed: int | None = None
    deterministic: bool | None = None
    progress: bool | None = None

    def shortcut_overrides(self, cfg_cls) -> list[str]:
        """Turn the CLI shortcuts (--epochs, --dataset ...) into `--set` items."""
        out = []
        train = {"epochs": self.epochs, "steps": self.steps, "max_time": self.max_time,
                 "batch_size": self.batch_size, "lr": self.lr, "device": self.device,
                 "precision": self.precision, "compile": self.compile, "seed": self.seed,
                 "deterministic": self.deterministic, "progress": self.progress}
        for key, value in train.items():
            if value is not None:
                out.append(f"train.{key}={_toml(value)}")
        if self.max_time is not None and self.epochs is None and self.steps is None:
            # `--max-time` alone means "train for this long": the schedule spans the budget.
            out += ["train.epochs=0", "train.steps=0"]
        if self.dataset is not None:
            out.append(f"data.dataset={_toml(self.dataset)}")
        if self.data_dir is not None:
            out.append(f"data.data_dir={_toml(str(self.data_dir))}")
        return out


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def resolve_config(task_name: str, opts: TrainOptions):
    from neuralsight.tasks import get_task

    task = get_task(task_name)
    overrides = list(opts.overrides) + opts.shortcut_overrides(task.Config)
    if opts.resume is not None:
        saved = Path(opts.resume) / "config.toml"
        if not Path(opts.resume).is_dir():
            raise UserError(f"--resume {opts.resume}: no such run directory", "list saved runs with `neuralsight runs`")
        if not saved.is_file():
            raise UserError(f"--resume {opts.resume} is not a neuralsight run directory (no config.toml)",
                            "pass a folder under runs/<task>/, see `neuralsight runs`")
        data = C.load_toml(saved)
        data.pop("task", None)
        for key, value in C.parse_overrides(overrides):
            C.set_dotted(data, key, value)
        return task, C.from_dict(task.Config, data)
    preset = opts.preset or getattr(task, "PRESET", None)
    if preset:
        C.preset_path(preset)  # a clear error naming the available presets
    return task, C.build(task.Config, preset=preset, file=opts.config_file, overrides=overrides, quick=opts.quick)


def train(task_name: str, opts: TrainOptions) -> Path:
    """Train one task end to end; returns the run directory (with report.html)."""
    from neuralsight.engine import distributed as dist
    from neuralsight.engine import runs
    from neuralsight.engine.device import describe_hardware
    from neuralsight.engine.trainer import setup
    from neuralsight.io import atomic_write_text

    task, cfg = resolve_config(task_name, opts)
    env = setup(cfg.train)
    if opts.resume is not None:
        run = runs.open_run(Path(opts.resume), writer=env.dist.is_main)
        if run.task != task_name:
            raise UserError(f"{opts.resume} is a '{run.task}' run, not '{task_name}'",
                            f"use `neuralsight train {run.task} --resume {opts.resume}`")
    else:
        name = opts.name or getattr(cfg, "name", None) or opts.preset or getattr(task, "PRESET", None) or task_name
        stamp = dist.broadcast_object(time.strftime("%Y%m%d-%H%M%S"))
        run = runs.create(task_name, name, root=opts.out, writer=env.dist.is_main, stamp=stamp)
        path = dist.broadcast_object(str(run.path))
        run.path = Path(path)
    if run.writer:
        atomic_write_text(run.path / "config.toml", C.dump_toml({"task": task_name, **C.to_dict(cfg)}))
    started = time.time()
    try:
        summary = task.train(cfg, env, run, resume=opts.resume is not None)
    except UserError:
        run.close()
        if opts.resume is None and run.writer and not run.metrics_path.exists():
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)  # nothing trained (e.g. data missing): leave no husk
        raise
    finally:
        run.close()
    summary.setdefault("task", task_name)
    summary["hardware"] = describe_hardware(env.device)
    summary["precision"] = env.precision
    summary["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    summary["wall_seconds"] = round(time.time() - started, 2)
    if run.writer:
        run.write_json("summary.json", summary)
        from neuralsight.report.html import write_report

        write_report(run.path)
    dist.barrier()
    dist.shutdown()
    if summary.get("interrupted"):
        fit = summary.get("fit") or {}
        raise Interrupted(run.path, fit.get("step", 0), fit.get("signal"), task_name)
    return run.path


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving its last checkpoint.

    The CLI exits with ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM), the shell convention.
    """

    def __init__(self, run_dir: Path, step: int, signum: int | None = None, task: str = "<task>"):
        import signal

        self.task = task
        self.run_dir = run_dir
        self.step = step
        self.signum = int(signum) if signum else int(signal.SIGINT)
        self.exit_code = 128 + self.signum
        super().__init__(f"interrupted at step {step}; saved {run_dir}/checkpoints/last")


def fit_summary(result) -> dict:
    """The part of summary.json that describes the training loop's outcome."""
    return {"step": result.step, "epoch": result.epoch, "best_step": result.best_step,
            "best_metric": result.best_metric, "train_seconds": round(result.train_seconds, 3),
            "wall_seconds": round(result.wall_seconds, 3), "items_per_second": round(result.items_per_second, 2),
            "stopped_by": result.stopped_by, "signal": getattr(result, "signal", None)}


def demo(out: Path | None = None, tasks: list[str] | None = None, data_dir: Path | None = None,
         device: str | None = None) -> Path:
    """Run every available task with its quick preset into ``runs/demo-<stamp>/``; write one report.

    A task whose data is missing (any :class:`UserError`) is listed as skipped with the reason; a task
    that crashes is listed as failed with its error, and the others still run. Raises
    :class:`DemoFailed` after writing the report when any task failed, so ``make demo`` reports it.
    """
    from rich.console import Console
    from rich.table import Table

    from neuralsight.report.html import read_summary, write_combined
    from neuralsight.tasks import available

    console = Console()
    root = Path(out) if out is not None else Path("runs")
    demo_dir = root / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while demo_dir.exists():
        n += 1
        demo_dir = root / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    demo_dir.mkdir(parents=True)
    entries = []
    for name in tasks or available():
        console.rule(f"[bold]demo: {name}")
        t0 = time.time()
        opts = TrainOptions(quick=True, out=demo_dir, data_dir=data_dir, device=device)
        try:
            run_dir = train(name, opts)
        except UserError as err:
            console.print(f"[yellow]demo: {name} skipped: {err}", markup=False, highlight=False)
            entries.append({"task": name, "status": "skipped", "reason": str(err), "seconds": time.time() - t0})
            continue
        except Interrupted:
            raise
        except Exception as err:  # noqa: BLE001 - one broken task must not hide the others' results
            import traceback

            traceback.print_exc()
            entries.append({"task": name, "status": "failed", "reason": f"{type(err).__name__}: {err}",
                            "seconds": time.time() - t0})
            continue
        head = read_summary(run_dir).get("headline") or {}
        value = head.get("value")
        text = f"{head.get('name', '')} {value:.4f}" if isinstance(value, (int, float)) else ""
        entries.append({"task": name, "status": "ok", "run": str(run_dir), "headline": text,
                        "seconds": time.time() - t0})
    if not entries:
        console.print("[yellow]demo: no task modules are part of this version of neuralsight; nothing to run")
    path = write_combined(demo_dir, entries)
    table = Table("task", "status", "headline / reason", "time (s)", title="neuralsight demo")
    for e in entries:
        table.add_row(e["task"], e["status"], e.get("headline") or e.get("reason", ""), f"{e['seconds']:.1f}")
    console.print(table)
    console.print(f"[green]demo report: {path}")
    failed = [e["task"] for e in entries if e["status"] == "failed"]
    if failed:
        raise DemoFailed(f"demo: {', '.join(failed)} failed (see {path})")
    return path


class DemoFailed(UserError):
    """At least one task of the demo crashed; the combined report was still written."""

    exit_code = 1

"""The task protocol, the one flow every task trains through, and saved runs.

A task is a class decorated with :func:`register_task`. It declares its name, its default preset, its config
dataclass and the options its commands take, and it implements :class:`Task`:

- ``build(cfg, env, run)`` loads the data and makes the engine's :class:`~neuralsight.engine.trainer.TrainTask`
  (or several, keyed by name, when a task trains several models: the first trains in the run itself, the others
  in ``run.child(name)``);
- ``finish(cfg, env, run, built, fits)`` runs once the best weights are loaded: the final evaluation of the
  test split, figures and artefacts; it returns an :class:`Outcome` (headline, validation and test metrics);
- ``evaluate(saved, split)`` and ``predict(saved, inputs, out, options)`` work on a :class:`SavedRun` and return
  data (``predict``: one dict per input, with ``"error"`` when that input failed); they never print;
- ``report(run_dir)`` returns the task's report sections as data (:mod:`neuralsight.report.sections`);
- optionally ``explain(saved, inputs, out, options) -> list[Path]`` and ``generate(saved, options) -> Iterator[str]``.

:func:`train` is the flow every ``neuralsight train TASK`` takes: resolve the config, make the run directory,
``build``, ``fit`` each model, reload the best weights, ``finish``, write ``summary.json`` and the report.
:meth:`SavedRun.open` is the one way a saved run is loaded (one device rule, one checkpoint fallback).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from neuralsight import config as C
from neuralsight.errors import CheckpointError, ConfigError, UserError


@dataclass
class NoOptions:
    """A command that takes no task-specific options."""


@dataclass
class Outcome:
    """What ``finish`` returns: the headline and the final metrics, kept apart by split."""

    headline: str                 # metric name, e.g. "test_acc"
    value: float | None
    split: str = "test"           # the split the headline was measured on
    val: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)   # anything else summary.json should keep (parameters, models)


class Task(Protocol):
    """What every task module registers (see the module docstring for the flow)."""

    name: ClassVar[str]
    help: ClassVar[str]
    preset: ClassVar[str]
    Config: ClassVar[type]
    PredictOptions: ClassVar[type]
    ExplainOptions: ClassVar[type]
    splits: ClassVar[tuple[str, ...]]    # the splits `eval` accepts; the first is its default

    def build(self, cfg: Any, env: Any, run: Any) -> Any: ...
    def finish(self, cfg: Any, env: Any, run: Any, built: Any, fits: dict) -> Outcome: ...
    def evaluate(self, saved: SavedRun, split: str) -> dict: ...
    def predict(self, saved: SavedRun, inputs: list[Path], out: Path, options: Any) -> list[dict]: ...
    def report(self, run_dir: Path) -> list: ...


# ---- registry ------------------------------------------------------------------------------------------

_TASKS: dict[str, type] = {}


def register_task(cls: type) -> type:
    """Class decorator: make a task known to the CLI, the app, the demo and the shared tests."""
    for attr in ("name", "help", "preset", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"task class {cls.__name__} needs a class attribute '{attr}'")
    cls.PredictOptions = getattr(cls, "PredictOptions", NoOptions)
    cls.ExplainOptions = getattr(cls, "ExplainOptions", NoOptions)
    cls.splits = tuple(getattr(cls, "splits", ("test", "val")))
    _TASKS[cls.name] = cls
    return cls


def list_tasks() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> Task:
    if name not in _TASKS:
        raise UserError(f"unknown task '{name}'", f"choose one of {', '.join(_TASKS)}")
    return _TASKS[name]()


def parse_options(cls: type, values: dict, command: str, task: str) -> Any:
    """Typed options of one command from ``--set key=value`` items and the command's shortcut flags."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            allowed = ", ".join(names) if names else "none"
            raise ConfigError(f"`{command}` option '{key}' does not apply to a {task} run",
                              f"its options: {allowed}")
    return C.from_dict(cls, dict(values), prefix="")


# ---- training ------------------------------------------------------------------------------------------

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


def read_config(task: Task, run_dir: Path) -> Any:
    """A run's ``config.toml`` as the task's config dataclass."""
    from neuralsight.engine.runs import read_config as read_toml

    data = read_toml(run_dir)
    data.pop("task", None)
    return C.from_dict(task.Config, data)


def resolve_config(task: Task, preset: str | None = None, config_file: Path | None = None,
                   overrides: list[str] | tuple = (), quick: bool = False, resume: Path | None = None) -> Any:
    """Defaults < preset < --config file < --quick < --set; a resumed run starts from its own config."""
    if resume is not None:
        from neuralsight.engine.runs import find_run

        if not Path(resume).is_dir():
            raise UserError(f"--resume {resume}: no such run directory", "list saved runs with `neuralsight runs`")
        run_dir = find_run(resume)
        data = C.load_toml(run_dir / "config.toml")
        data.pop("task", None)
        for key, value in C.parse_overrides(list(overrides)):
            C.set_dotted(data, key, value)
        return C.from_dict(task.Config, data)
    return C.build(task.Config, preset=preset or task.preset, file=config_file, overrides=overrides, quick=quick)


def default_run_name(task: Task, cfg: Any, preset: str | None) -> str:
    """The run is named after its data (a Hamlet run is not called "romeo"), else after the preset."""
    naming = getattr(task, "run_name", None)
    name = naming(cfg) if callable(naming) else None
    return name or preset or task.preset or task.name


def train(task_name: str, preset: str | None = None, config_file: Path | None = None,
          overrides: list[str] | tuple = (), quick: bool = False, resume: Path | None = None,
          name: str | None = None, out: Path | None = None) -> Path:
    """Train one task end to end; returns the run directory (with summary.json and report.html).

    Raises :class:`Interrupted` after saving when a signal stopped training.
    """
    from neuralsight.engine import distributed as dist
    from neuralsight.engine import runs
    from neuralsight.engine.trainer import setup
    from neuralsight.io import atomic_write_text

    task = get_task(task_name)
    cfg = resolve_config(task, preset, config_file, overrides, quick, resume)
    env = setup(cfg.train)
    if resume is not None:
        run = runs.open_run(Path(resume), writer=env.dist.is_main)
        if run.task != task_name:
            raise UserError(f"{resume} is a '{run.task}' run, not '{task_name}'",
                            f"use `neuralsight train {run.task} --resume {resume}`")
    else:
        stamp = dist.broadcast_object(time.strftime("%Y%m%d-%H%M%S"))
        run = runs.create(task_name, name or default_run_name(task, cfg, preset), root=out,
                          writer=env.dist.is_main, stamp=stamp)
        run.path = Path(dist.broadcast_object(str(run.path)))
    if run.writer:
        atomic_write_text(run.path / "config.toml", C.dump_toml({"task": task_name, **C.to_dict(cfg)}))
    started = time.time()
    try:
        summary = _train_run(task, cfg, env, run, resume is not None)
    except UserError:
        run.close()
        if resume is None and run.writer and not run.metrics_path.exists():
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)  # nothing trained (e.g. data missing): leave no husk
        raise
    finally:
        run.close()
    if run.writer:
        from neuralsight.engine.device import describe_hardware

        summary.update(hardware=describe_hardware(env.device), precision=env.precision,
                       started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                       finished=time.strftime("%Y-%m-%d %H:%M:%S"), wall_seconds=round(time.time() - started, 2))
        run.write_json("summary.json", summary)
        from neuralsight.engine import progress

        with progress.status("writing report.html"):
            write_report(task, run.path)
    dist.barrier()
    dist.shutdown()
    if summary.get("interrupted"):
        fit = summary.get("fit") or {}
        raise Interrupted(run.path, fit.get("step", 0), fit.get("signal"), task_name)
    return run.path


def _train_run(task: Task, cfg: Any, env: Any, run: Any, resume: bool) -> dict:
    from neuralsight.engine.checkpoint import load_weights
    from neuralsight.engine.trainer import fit

    built = task.build(cfg, env, run)
    items = list(built.items()) if isinstance(built, dict) else [("", built)]
    config_dict = {"task": task.name, **C.to_dict(cfg)}
    fits, subs = {}, {}
    for i, (child, train_task) in enumerate(items):
        sub = run if i == 0 else run.child(child)
        again = resume and (sub.checkpoints / "last.json").is_file()
        fits[child] = fit(train_task, env, cfg.train, sub, config_dict, resume=again,
                          on_evaluate=getattr(train_task, "on_evaluate", None))
        subs[child] = sub
        if sub is not run:
            sub.close()
        if fits[child].interrupted:
            break
    first = fits[items[0][0]]
    interrupted = any(f.interrupted for f in fits.values())
    summary: dict = {"task": task.name, "fit": first.to_summary(), "interrupted": interrupted,
                     "headline": {"name": None, "value": None, "split": None}, "metrics": {"val": {}, "test": {}}}
    if len(items) > 1:
        summary["fits"] = {child: f.to_summary() for child, f in fits.items()}
    if interrupted or not env.dist.is_main:
        return summary
    from neuralsight.engine import progress

    for child, train_task in items:
        load_weights(train_task.model, subs[child].checkpoints, "best", device=env.device)
        train_task.model.eval()
    with progress.status("final evaluation with the best checkpoint"):
        outcome = task.finish(cfg, env, run, built, fits)
    summary["headline"] = {"name": outcome.headline, "value": outcome.value, "split": outcome.split}
    summary["metrics"] = {"val": outcome.val, "test": outcome.test}
    summary.update(outcome.extra)
    return summary


def write_report(task: Task, run_dir: Path) -> Path:
    """(Re-)render ``report.html`` of a run from its files."""
    from neuralsight.report.html import write_report as render

    return render(run_dir, task.report(Path(run_dir)))


# ---- saved runs ----------------------------------------------------------------------------------------

@dataclass
class SavedRun:
    """A finished (or interrupted) run directory, opened for eval, predict, explain, export or the app."""

    path: Path
    task: Task
    cfg: Any
    device: Any
    summary: dict
    _models: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: Path | str, device: str = "auto", data_dir: Path | None = None,
             root: Path | None = None) -> SavedRun:
        """Open a run directory (or ``latest`` / ``latest:TASK`` under ``root``, default ``runs/``).

        ``device="auto"`` takes CUDA, then MPS, then the CPU, for every task. ``data_dir`` points the run at
        another copy of its data (``--data``).
        """
        from neuralsight.engine.device import resolve_device
        from neuralsight.engine.runs import find_run, read_run_task, read_summary

        run_dir = find_run(path, root)
        task = get_task(read_run_task(run_dir))
        try:
            cfg = read_config(task, run_dir)
        except ConfigError as err:
            raise CheckpointError(f"{run_dir}/config.toml does not fit this version of the {task.name} task: "
                                  f"{err.message}", "retrain the run with this version") from None
        if data_dir is not None:
            if not hasattr(cfg.data, "data_dir"):
                raise UserError(f"--data does not apply to a {task.name} run")
            cfg.data.data_dir = str(data_dir)
        return cls(run_dir, task, cfg, resolve_device(device), read_summary(run_dir))

    @property
    def env(self):
        """The run's environment for evaluation: its device, and the precision its config resolves to there."""
        from neuralsight.engine import distributed as dist
        from neuralsight.engine.device import resolve_precision
        from neuralsight.engine.trainer import Env

        return Env(device=self.device, precision=resolve_precision(self.cfg.train.precision, self.device),
                   dist=dist.detect(), seed=self.cfg.train.seed)

    def checkpoint_dir(self, child: str = "") -> Path:
        return self.path / "checkpoints" if not child else self.path / "models" / child / "checkpoints"

    def tag(self, child: str = "") -> str:
        """``best``, else ``last`` (a run stopped before its first evaluation); an error when neither exists."""
        ck = self.checkpoint_dir(child)
        for tag in ("best", "last"):
            if (ck / f"{tag}.json").is_file():
                return tag
        raise CheckpointError(f"{ck} holds no checkpoint", "the run did not get to save one; retrain it")

    def state(self, child: str = "") -> dict:
        from neuralsight.engine.checkpoint import read_state

        return read_state(self.checkpoint_dir(child), self.tag(child))

    def model(self, child: str = ""):
        """The model of ``child`` ("" is the run's own) rebuilt from its checkpoint, on the device, in eval mode."""
        if child not in self._models:
            from neuralsight.engine.checkpoint import load_weights
            from neuralsight.models import create_model

            spec = self.state(child).get("model") or {}
            try:
                model = create_model(spec["name"], **spec["kwargs"])
            except (KeyError, TypeError, ValueError) as err:
                raise CheckpointError(f"{self.checkpoint_dir(child)} holds a model this version cannot rebuild "
                                      f"({err})", "retrain the run with this version") from None
            load_weights(model, self.checkpoint_dir(child), self.tag(child), device=self.device)
            self._models[child] = model.to(self.device).eval()
        return self._models[child]

    def read_json(self, name: str, default: Any = None) -> Any:
        import json

        path = self.path / name
        if not path.is_file():
            return default
        return json.loads(path.read_text(encoding="utf-8"))


# ---- inputs --------------------------------------------------------------------------------------------

def expand_inputs(inputs: list[Path], suffixes: tuple[str, ...], within: tuple[str, ...] = ()) -> list[Path]:
    """Files as given, plus the files with one of ``suffixes`` inside each folder (sorted); missing paths kept,
    so the task reports them as failed inputs. A folder holding a subfolder named in ``within`` stands for the
    first such subfolder (a Decathlon folder for its ``imagesTs``, else its ``imagesTr``)."""
    out: list[Path] = []
    for p in map(Path, inputs):
        p = next((p / sub for sub in within if (p / sub).is_dir()), p)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes)
                              and not f.name.startswith(".")))
        else:
            out.append(p)
    return out


def failed(path: Path, err: Exception | str) -> dict:
    """The result row of an input that could not be processed."""
    return {"input": str(path), "error": str(err)}

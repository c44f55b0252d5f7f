"""A toy task module that follows the tasks/ contract, for engine, CLI, report and demo tests.

``register()`` installs it as ``neuralsight.tasks.toy`` (and a data-less ``toymissing``) so the CLI,
the runner, the report and the demo treat it like a real task. Run as a script it is the CLI with the
toy task registered, so subprocess tests (signals, torchrun) drive the real command line.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded
from neuralsight.errors import DataError

PRESET = None


@dataclass
class Data:
    dataset: str = "toy"
    data_dir: str | None = None
    n: int = bounded(512, min=8)
    noise: float = bounded(0.01, min=0)


@dataclass
class Config:
    data: Data = field(default_factory=Data)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False, threads=1,
                                                                     log_every=5))


def train(cfg: Config, env, run, resume: bool) -> dict:
    import torch
    from toy_task import ToyTask

    from neuralsight.engine.checkpoint import load_weights
    from neuralsight.engine.trainer import fit
    from neuralsight.viz.figures import plt, save

    task = ToyTask(cfg, env.device)
    result = fit(task, env, cfg.train, run, config_dict={}, resume=resume)
    if run.writer and (run.checkpoints / "best.safetensors").is_file():
        load_weights(task.model, run.checkpoints, "best")
    task.model.eval()
    with torch.no_grad():
        metrics = task.evaluate(task.model)
        pred = task.model(task.xv.to(env.device)).float().cpu().numpy()
    if run.writer:
        p = plt()
        fig, ax = p.subplots(figsize=(3, 3))
        ax.scatter(task.yv[:, 0].numpy(), pred[:, 0], s=6)
        ax.set_xlabel("target")
        ax.set_ylabel("prediction")
        save(fig, run.figures / "fit.png")
    return {"headline": {"name": "val_loss", "value": metrics["val_loss"]}, "metrics": metrics,
            "fit": result.to_summary(), "interrupted": result.interrupted}


def report_sections(run_dir):
    from neuralsight.report.html import Section, figure

    return [Section("Toy predictions", figure(Path(run_dir) / "figures" / "fit.png", "prediction against target"),
                    "toy")]


def evaluate(run_dir, opts):
    import json

    return json.loads((Path(run_dir) / "summary.json").read_text())["metrics"]


def _missing_train(cfg, env, run, resume):
    raise DataError("dataset toy-data not found in /nonexistent/toy", "fetch it with `neuralsight data fetch toy`")


def _install(name: str, module: types.ModuleType) -> None:
    import neuralsight.tasks as tasks

    full = f"neuralsight.tasks.{name}"
    if getattr(module, "__spec__", None) is None:
        module.__spec__ = importlib.machinery.ModuleSpec(full, None)
    sys.modules[full] = module
    if name not in tasks.TASKS:
        tasks.TASKS = (*tasks.TASKS, name)


def register() -> None:
    """Make ``toy`` (trains in seconds) and ``toymissing`` (its data is missing) available as tasks."""
    _install("toy", sys.modules[__name__])
    missing = types.ModuleType("neuralsight.tasks.toymissing")
    missing.PRESET, missing.Config, missing.train = None, Config, _missing_train
    _install("toymissing", missing)


def cli_app():
    """The Typer app with ``train toy`` registered (idempotent)."""
    register()
    from neuralsight import cli

    names = {c.name for c in cli.train_app.registered_commands}
    for name in ("toy", "toymissing"):
        if name not in names:
            cli.train_app.command(name)(cli._make_train_command(name))
    return cli.app


if __name__ == "__main__":
    sys.modules.setdefault("engine_toy", sys.modules[__name__])
    register()
    from neuralsight import cli

    cli.main()

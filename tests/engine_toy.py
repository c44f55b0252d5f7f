"""A toy task registered like a real one, for engine, CLI, report and demo tests.

Importing this module registers ``toy`` (trains in seconds) and ``toymissing`` (its data is missing) with
``@register_task``, exactly as a new task would. Run as a script it is the CLI with both registered, so
subprocess tests (signals, torchrun) drive the real command line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded
from neuralsight.errors import MissingData
from neuralsight.report.sections import Figure, Section
from neuralsight.tasks.base import Outcome, register_task


@dataclass
class Data:
    dataset: str = "toy"
    data_dir: str | None = None
    n: int = bounded(512, min=8)
    noise: float = bounded(0.01, min=0)


@dataclass
class Config:
    data: Data = field(default_factory=Data)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False,
                                                                     threads=1, log_every=5))


@register_task
class Toy:
    name = "toy"
    help = "Learn y = W x + b on synthetic data (tests only)."
    preset = ""
    Config = Config

    def build(self, cfg, env, run):
        from toy_task import ToyTask

        return ToyTask(cfg, env.device)

    def finish(self, cfg, env, run, built, fits) -> Outcome:
        import torch

        from neuralsight.viz.figures import plt, save

        with torch.no_grad():
            metrics = built.evaluate(built.model)
            pred = built.model(built.xv.to(env.device)).float().cpu().numpy()
        if run.writer:
            p = plt()
            fig, ax = p.subplots(figsize=(3, 3))
            ax.scatter(built.yv[:, 0].numpy(), pred[:, 0], s=6)
            ax.set_xlabel("target")
            ax.set_ylabel("prediction")
            save(fig, run.figures / "fit.png")
        return Outcome("val_loss", metrics["val_loss"], "val", val=metrics)

    def evaluate(self, saved, split: str) -> dict:
        return json.loads((Path(saved.path) / "summary.json").read_text())["metrics"]["val"]

    def predict(self, saved, inputs, out, options) -> list[dict]:
        return [{"input": str(p), "size": Path(p).stat().st_size} if Path(p).is_file()
                else {"input": str(p), "error": "no such file"} for p in inputs]

    def report(self, run_dir):
        return [Section("Toy predictions", [Figure(Path(run_dir) / "figures" / "fit.png", "prediction against target")],
                        "toy")]


@register_task
class ToyMissing(Toy):
    name = "toymissing"
    help = "A task whose data is missing (tests only)."

    def build(self, cfg, env, run):
        raise MissingData("dataset toy-data not found in /nonexistent/toy", "fetch it with `neuralsight data fetch toy`")


def cli_app():
    """The Typer app with ``train toy`` and ``train toymissing`` (registering the commands is idempotent)."""
    from neuralsight import cli
    from neuralsight.cli.train import register_train_commands, train_app

    names = {c.name for c in train_app.registered_commands}
    if "toy" not in names:
        register_train_commands(only=("toy", "toymissing"))
    return cli.app


if __name__ == "__main__":
    sys.modules.setdefault("engine_toy", sys.modules[__name__])
    cli_app()
    from neuralsight import cli

    cli.main()

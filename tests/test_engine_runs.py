"""Run directories (sub-runs, config and summary readers), the fit summary, and the TrainTask protocol."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest
from engine_toy import Config
from toy_task import ToyTask

from neuralsight.engine import runs, trainer
from neuralsight.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"


def _fit(tmp_path, task=None, name="run", **train):
    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, precision="fp32", device="cpu", deterministic=True, **train)
    env = trainer.setup(cfg.train)
    task = task or ToyTask(cfg, env.device)
    run = runs.create("toy", name, root=tmp_path, stamp="s")
    return trainer.fit(task, env, cfg.train, run, {}), run, task


def test_child_is_a_sub_run_with_its_own_checkpoints_and_metrics(tmp_path):
    run = runs.create("forecast", "x", root=tmp_path, stamp="s")
    child = run.child("gru")
    assert child.path == run.path / "models" / "gru" and child.task == "forecast" and child.writer
    assert child.checkpoints.is_dir() and child.metrics_path == run.path / "models" / "gru" / "metrics.jsonl"
    child.log({"kind": "train", "step": 1})
    child.close()
    assert runs.read_metrics(child.path) == [{"kind": "train", "step": 1}]
    assert runs.read_metrics(run.path) == []  # the parent's metrics stay its own

    reader = runs.Run(path=tmp_path / "elsewhere", task="forecast", writer=False).child("gru")
    assert not reader.path.exists()  # a non-writing rank creates nothing


def test_forecast_layout_written_by_0_1_reads_through_child():
    run = runs.open_run(FIXTURES / "forecast" / "20261201-215835-fixture", writer=False)
    models = sorted(p.name for p in (run.path / "models").iterdir())
    assert models, "the fixture has extra models"
    for name in models:
        assert (run.child(name).checkpoints / "best.json").is_file()


def test_read_config_and_read_summary(tmp_path):
    fixture = FIXTURES / "classify" / "20261201-215758-fixture"
    config = runs.read_config(fixture)
    assert config["task"] == "classify" and "train" in config
    summary = runs.read_summary(fixture)
    assert summary == json.loads((fixture / "summary.json").read_text())
    with pytest.raises(UserError, match="not a neuralsight run directory"):
        runs.read_config(tmp_path)
    assert runs.read_summary(tmp_path) == {}
    (tmp_path / "summary.json").write_text("{cut")
    assert runs.read_summary(tmp_path) == {}
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert runs.read_summary(tmp_path) == {}


def test_the_run_method_alias_of_read_metrics_is_gone():
    assert not hasattr(runs.Run, "read_metrics") and callable(runs.read_metrics)


def test_to_summary_keeps_the_0_1_fields_plus_the_units(tmp_path):
    result, _, _ = _fit(tmp_path, steps=10, eval_every=5)
    summary = result.to_summary()
    assert set(summary) == {"step", "epoch", "best_step", "best_metric", "train_seconds", "wall_seconds",
                            "items_per_second", "stopped_by", "signal", "item_unit", "metric_units"}
    assert summary["step"] == result.step == 10 and summary["stopped_by"] == result.stopped_by == "steps"
    assert summary["best_metric"] == result.best_metric and summary["train_seconds"] == round(result.train_seconds, 3)
    assert summary["item_unit"] == "items" and summary["metric_units"] == {}
    json.dumps(summary)  # it goes into summary.json as it is


def test_protocol_declares_every_attribute_fit_reads():
    hints = typing.get_type_hints(trainer.TrainTask)
    for name in ("model", "model_spec", "monitor", "monitor_mode", "channels_last", "evaluate_at_start",
                 "item_unit", "metric_units"):
        assert name in hints, name
    assert (trainer.TrainTask.channels_last, trainer.TrainTask.evaluate_at_start) == (False, False)
    assert trainer.TrainTask.item_unit == "items" and dict(trainer.TrainTask.metric_units) == {}
    # fit reads no other attribute of a task: a task with only the required ones trains.
    source = Path(trainer.__file__).read_text()
    assert "getattr(task" not in source.replace("getattr(task, name, getattr(TrainTask, name))", "")


class Bare:
    """Only the required members: every optional attribute takes the protocol's default."""

    def __init__(self, toy):
        self.toy = toy
        self.model, self.model_spec, self.monitor, self.monitor_mode = toy.model, toy.model_spec, "val_loss", "min"

    def train_size(self):
        return self.toy.train_size()

    def get_batch(self, indices):
        return self.toy.get_batch(indices)

    def training_step(self, model, batch):
        return self.toy.training_step(model, batch)

    def evaluate(self, model):
        return self.toy.evaluate(model)


def test_optional_attributes_default_and_apply(tmp_path):
    cfg = Config()
    result, run, _ = _fit(tmp_path, Bare(ToyTask(cfg, "cpu")), steps=6, eval_every=3)
    assert result.item_unit == "items" and [r["step"] for r in runs.read_metrics(run.path) if r["kind"] == "eval"] == [3, 6]

    class Declared(ToyTask):
        evaluate_at_start = True
        item_unit = "windows"
        metric_units = {"val_loss": "nats/char"}

    result, run, _ = _fit(tmp_path, Declared(cfg, "cpu"), name="d", steps=6, eval_every=3)
    assert [r["step"] for r in runs.read_metrics(run.path) if r["kind"] == "eval"] == [0, 3, 6]
    assert result.to_summary()["item_unit"] == "windows"
    assert result.to_summary()["metric_units"] == {"val_loss": "nats/char"}

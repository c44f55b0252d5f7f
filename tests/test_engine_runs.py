"""Run directories: sub-runs, the config and summary readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuralsight.engine import runs
from neuralsight.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"


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

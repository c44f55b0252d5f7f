"""A forecast run written by 0.1.0 (tests/fixtures/runs-v0.1/forecast) opens, evaluates, predicts and re-renders
its report through the task protocol, with the numbers 0.1.0 printed (expected/eval_forecast.json and
expected/predict_forecast.csv)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import shared_data
from helpers import png_nonblank, report_ok
from typer.testing import CliRunner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs-v0.1"
EXPECTED = FIXTURES / "expected"


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A copy of the 0.1.0 run (eval and report write into the run directory)."""
    shared_data("covid-hu")
    (src,) = (FIXTURES / "forecast").iterdir()
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_old_run_opens_with_both_models(old_run):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(old_run, device="cpu")
    assert saved.task.name == "forecast" and saved.cfg.model.models == ["lstm", "mlp"]
    first, second = saved.model(""), saved.model("mlp")   # the first model in the run, the others in models/
    assert type(first).__name__ == "RecurrentForecaster" and type(second).__name__ == "WindowMLP"
    assert saved.checkpoint_dir("mlp") == old_run / "models" / "mlp" / "checkpoints"


def test_eval_equals_what_0_1_printed(old_run):
    from neuralsight.tasks.base import SavedRun

    expected = json.loads((EXPECTED / "eval_forecast.json").read_text())
    saved = SavedRun.open(old_run, device="cpu")
    got = saved.task.evaluate(saved, "test")
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    # The CLI prints the same numbers, labelled with their split.
    from neuralsight.cli import app

    res = CliRunner().invoke(app, ["eval", str(old_run), "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed.pop("split") == "test"
    assert printed == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_val_split_is_what_chose_the_checkpoints(old_run):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(old_run, device="cpu")
    got = saved.task.evaluate(saved, "val")
    chosen = json.loads((old_run / "forecast.json").read_text())["val_mae"]   # the engine's best val_mae
    assert set(got) == {"lstm.val_loss", "lstm.val_mae", "mlp.val_loss", "mlp.val_mae"}
    for kind, value in chosen.items():
        assert got[f"{kind}.val_mae"] == pytest.approx(value, rel=1e-6), kind
    from neuralsight.errors import UserError

    with pytest.raises(UserError, match="a forecast run has no 'train' split"):
        saved.task.evaluate(saved, "train")


def test_predict_equals_what_0_1_wrote(old_run, tmp_path):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(old_run, device="cpu")
    out = tmp_path / "pred"
    rows = saved.task.predict(saved, [], out, saved.task.PredictOptions())
    assert len(rows) == 1 and "error" not in rows[0]
    row = rows[0]
    old = json.loads((EXPECTED / "predict_forecast.json").read_text())   # what 0.1 printed with --json
    assert (row["horizon"], row["from"], row["fill_report"]) == (old["horizon"], old["from"], old["fill_report"])
    assert row["input"].endswith("hungary_daily_cases.csv") and row["to"] == "2022-01-14" and row["model"] == "lstm"
    assert row["outputs"] == {"csv": str(out / "forecast.csv"), "plot": str(out / "forecast.png")}
    want = list(csv.reader((EXPECTED / "predict_forecast.csv").open()))
    got = list(csv.reader((out / "forecast.csv").open()))
    assert got[0] == want[0] and len(got) == len(want) == 15
    for g, w in zip(got[1:], want[1:], strict=True):
        assert g[:2] == w[:2]                                              # date, step
        assert [float(v) for v in g[2:]] == pytest.approx([float(v) for v in w[2:]], rel=1e-6, abs=1e-6)
    assert png_nonblank(out / "forecast.png")


def test_report_rerenders(old_run):
    from neuralsight.cli import app

    (old_run / "report.html").unlink()
    res = CliRunner().invoke(app, ["report", str(old_run)])
    assert res.exit_code == 0, res.output
    assert report_ok(old_run)
    html = (old_run / "report.html").read_text()
    for text in ("Forecast backtest", "Why position matters", "seasonal_naive", "accuracy at unseen positions",
                 "Backtest scores (test split"):
        assert text in html, text
    assert html.count("data:image/png;base64,") == 5   # forecasts, error by horizon, origins, position, curves

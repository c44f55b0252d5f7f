"""A forecast run written by 0.1.0 (tests/fixtures/runs-v0.1/forecast) opens, evaluates, predicts and re-renders
its report through the task protocol. Its forecasts are the ones 0.1.0 made (expected/eval_forecast.json and
expected/predict_forecast.csv); its MASE is now Hyndman and Koehler's, recomputed here from the CSV by hand.
0.1.0's "MASE" (MAE over seasonal naive's on the test window) is what the task now calls relative MAE."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
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


def _by_hand(old_run: Path) -> dict:
    """The run's test-window MASE at 1, 7 and 14 steps, recomputed from the CSV with numpy alone: the 7-day trailing
    mean to 2021-12-31, origins 2021-07-02..2021-12-17, each scaled by the in-sample MAE of the seasonal naive
    forecast (m = 7) of the series up to its origin; naive, seasonal naive and the LSTM (its own checkpoint)."""
    import torch

    from neuralsight.models.forecaster import RecurrentForecaster

    rows = list(csv.DictReader((shared_data("covid-hu") / "hungary_daily_cases.csv").open()))
    raw = np.array([float(r["new_cases"]) for r in rows if r["date"] <= "2021-12-31"])
    y = np.array([raw[max(0, t - 6): t + 1].mean() for t in range(len(raw))])       # (710,)
    origins = np.arange(len(y) - 182 - 1, len(y) - 14)                              # 527 .. 695
    truth = y[origins[:, None] + np.arange(1, 15)]                                    # (169, 14)
    scale = np.array([np.abs(y[7:o + 1] - y[:o - 6]).mean() for o in origins])
    h = np.arange(1, 15)
    forecasts = {"naive": np.repeat(y[origins][:, None], 14, axis=1),
                 "seasonal_naive": y[origins[:, None] + h - 7 * np.ceil(h / 7).astype(int)]}
    info = json.loads((old_run / "forecast.json").read_text())["transform"]
    state = json.loads((old_run / "checkpoints" / "best.json").read_text())["model"]
    lstm = RecurrentForecaster(**state["kwargs"])
    from safetensors.torch import load_file

    lstm.load_state_dict(load_file(old_run / "checkpoints" / "best.safetensors"))
    z = (np.log1p(y) - info["mean"]) / info["std"]
    with torch.no_grad():
        q = lstm.eval()(torch.tensor(z[origins[:, None] + np.arange(-27, 1)], dtype=torch.float32))[..., 1]
    forecasts["lstm"] = np.expm1(q.double().numpy() * info["std"] + info["mean"])
    out = {}
    for name, f in forecasts.items():
        scaled = np.abs(f - truth) / scale[:, None]
        out.update({f"{name}.mase": scaled.mean(), **{f"{name}.mase_h{k}": scaled[:, k - 1].mean() for k in (1, 7, 14)}})
    return out


def test_eval_scores_0_1s_forecasts_with_the_true_mase(old_run):
    from neuralsight.tasks.base import SavedRun

    expected = json.loads((EXPECTED / "eval_forecast.json").read_text())   # what 0.1 printed
    saved = SavedRun.open(old_run, device="cpu")
    got = saved.task.evaluate(saved, "test")
    names = ("naive", "seasonal_naive", "lstm", "mlp")
    keys = {f"{n}.{k}" for n in names for k in ("mase", "mae", "rmse", "relative_mae", "mase_h1", "mase_h7",
                                                 "mase_h14", "relative_mae_h1", "relative_mae_h7", "relative_mae_h14")}
    assert set(got) == keys | {f"{n}.{k}" for n in ("lstm", "mlp") for k in ("coverage", "coverage_nominal")}
    for key, value in expected.items():
        name, metric = key.split(".")
        if metric.startswith("mase"):   # 0.1's "MASE" was MAE relative to seasonal naive on the same origins
            assert got[f"{name}.relative_{metric.replace('mase', 'mae')}"] == pytest.approx(value, rel=1e-6), key
        else:                           # the same forecasts: MAE, RMSE, coverage as 0.1 printed them
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert got["lstm.coverage_nominal"] == 0.8
    by_hand = _by_hand(old_run)
    for key, value in by_hand.items():
        assert got[key] == pytest.approx(value, rel=1e-5), key
    # seasonal naive no longer scores 1 by construction (0.1: 1.0 at every horizon)
    assert got["seasonal_naive.mase_h7"] == pytest.approx(1.7994, abs=1e-4)
    assert got["lstm.mase_h7"] == pytest.approx(1.8147, abs=1e-4)
    # The CLI prints the same numbers, labelled with their split.
    from neuralsight.cli import app

    res = CliRunner().invoke(app, ["eval", str(old_run), "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed.pop("split") == "test"
    assert printed == pytest.approx(got, rel=1e-6, abs=1e-6)


def test_val_split_is_what_chose_the_checkpoints(old_run):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(old_run, device="cpu")
    got = saved.task.evaluate(saved, "val")
    chosen = json.loads((old_run / "forecast.json").read_text())["val_mae"]   # the engine's best val_mae
    assert {"lstm.val_loss", "lstm.val_mae", "mlp.val_loss", "mlp.val_mae"} <= set(got)
    # and the validation window's backtest, which chooses the best net
    assert {"lstm.mase_h7", "mlp.mase_h7", "seasonal_naive.mase_h7", "lstm.coverage"} <= set(got)
    test = saved.task.evaluate(saved, "test")
    assert got["lstm.mase_h7"] != pytest.approx(test["lstm.mase_h7"])
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
                 "Backtest scores (test window", "Written by neuralsight 0.1"):
        assert text in html, text
    assert html.count("data:image/png;base64,") == 5   # forecasts, error by horizon, origins, position, curves

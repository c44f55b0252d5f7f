"""`neuralsight train forecast --quick` on covid-hu, then eval, predict and the position command, in-process."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import shared_data
from helpers import png_nonblank, report_ok
from typer.testing import CliRunner


@pytest.mark.slow
def test_train_eval_predict_forecast(tmp_path):
    shared_data("covid-hu")
    from neuralsight.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["train", "forecast", "--quick", "--out", str(tmp_path), "--no-progress",
                              "--set", "train.steps=60", "--set", "train.eval_every=30",
                              "--set", 'model.models=["lstm", "mlp"]', "--set", "position.steps=20",
                              "--set", "position.train_size=64"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "forecast").iterdir())
    assert report_ok(run_dir)
    for name in ("forecasts", "error_by_horizon", "backtest_origins", "position", "training_curves"):
        assert png_nonblank(run_dir / "figures" / f"{name}.png"), name
    html = (run_dir / "report.html").read_text()
    assert "seasonal_naive" in html and "Why position matters" in html
    summary = json.loads((run_dir / "summary.json").read_text())
    test, val = summary["metrics"]["test"], summary["metrics"]["val"]
    assert test["seasonal_naive.mase"] == pytest.approx(1.0)
    assert {"lstm.mase_h7", "mlp.mase_h14", "naive.mase_h1", "lstm.coverage", "position.unseen_acc.cnn"} <= set(test)
    assert summary["headline"]["split"] == "test" and summary["headline"]["name"].startswith("7-step MASE")
    assert (run_dir / "models" / "mlp" / "checkpoints" / "best.json").is_file()
    # Validation metrics are the ones that chose each model's checkpoint.
    assert set(summary["fits"]) == {"lstm", "mlp"}
    for kind in ("lstm", "mlp"):
        assert val[f"{kind}.val_mae"] == pytest.approx(summary["fits"][kind]["best_metric"], rel=1e-6)

    res = runner.invoke(app, ["eval", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again.pop("split") == "test" and set(again) == set(test) - {k for k in test if k.startswith("position.")}
    assert again["lstm.mase_h7"] == pytest.approx(test["lstm.mase_h7"], rel=1e-4)
    res = runner.invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mlp.val_mae"] == pytest.approx(val["mlp.val_mae"], rel=1e-6)

    out = tmp_path / "pred"
    res = runner.invoke(app, ["predict", str(run_dir), "--horizon", "10", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["outputs"] == {"csv": str(out / "forecast.csv"), "plot": str(out / "forecast.png")}
    assert (row["from"], row["to"], row["horizon"]) == ("2021-12-31", "2022-01-10", 10)
    rows = list(csv.DictReader((out / "forecast.csv").open()))
    assert len(rows) == 10 and rows[0]["date"] == "2022-01-01" and rows[-1]["step"] == "10"
    assert {"lstm", "lstm_q0.1", "lstm_q0.9", "mlp", "naive", "seasonal_naive"} <= set(rows[0])
    assert all(float(r["lstm_q0.1"]) <= float(r["lstm_q0.9"]) for r in rows)
    assert png_nonblank(out / "forecast.png")

    # A new CSV as input: forecast from its end, and a bad one is one clear line.
    new = tmp_path / "new.csv"
    src = (shared_data("covid-hu") / "hungary_daily_cases.csv").read_text().splitlines()
    new.write_text("\n".join(src[:400]) + "\n")
    res = runner.invoke(app, ["predict", str(run_dir), str(new), "--out", str(tmp_path / "p2")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "p2" / "forecast.csv").open()))
    assert len(rows) == 14 and rows[0]["date"] == "2021-02-24"  # 399 days from 2020-01-22
    bad = tmp_path / "bad.csv"
    bad.write_text("date,new_cases\n2021-01-01,3\n2021-01-02,lots\n")
    res = runner.invoke(app, ["predict", str(run_dir), str(bad)])
    assert res.exit_code == 2 and "bad.csv line 3: non-numeric value 'lots'" in res.output
    res = runner.invoke(app, ["predict", str(run_dir), "--horizon", "30"])
    assert res.exit_code == 2 and "outside 1..14" in res.output


def test_position_command(tmp_path):
    from neuralsight.cli import app

    res = CliRunner().invoke(app, ["position", "--out", str(tmp_path), "--steps", "5", "--train-size", "32",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()   # a table: header, then one row per model
    assert lines[0].split() == ["model", "accuracy", "at", "trained", "positions", "accuracy", "at", "unseen",
                                "positions"]
    assert [line.split()[0] for line in lines[1:4]] == ["ffn", "lstm", "cnn"]
    assert png_nonblank(tmp_path / "position.png")
    res = CliRunner().invoke(app, ["position", "--out", str(tmp_path), "--train-positions", "40"])
    assert res.exit_code == 2 and "--train-positions 40 must be between 1 and 20" in res.output

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
    # The baselines' true MASE on this series and test window, worked out from the CSV by hand in
    # tests/test_compat_forecast.py (the 0.1 fixture has the same data, windows and period).
    assert test["seasonal_naive.mase_h7"] == pytest.approx(1.7994, abs=1e-4)
    assert test["naive.mase_h1"] == pytest.approx(0.2464, abs=1e-4)
    assert test["seasonal_naive.relative_mae"] == 1.0 and test["lstm.coverage_nominal"] == 0.8
    assert {"lstm.mase_h7", "mlp.mase_h14", "lstm.relative_mae_h7", "lstm.coverage", "position.unseen_acc.cnn"} \
        <= set(test)
    # "best" is the recurrent net with the lowest validation MASE at 7 steps; the headline is its test MASE
    protocol = summary["forecast"]
    assert protocol["best"] == {"model": "lstm", "family": "recurrent net", "chosen_on": "val",
                                "criterion": "mase_h7"}                       # the only recurrent net here
    assert summary["headline"] == {"name": "7-day MASE of the best recurrent net (lstm, chosen on validation)",
                                   "value": test["lstm.mase_h7"], "split": "test"}
    assert protocol["target_series"] == "new_cases: 7-day trailing mean of the daily values"
    assert protocol["season"] == 7 and "period 7" in protocol["mase"] and protocol["interval_nominal"] == 0.8
    assert protocol["windows"] == {"train": ["2020-01-22", "2021-04-02"], "val": ["2021-04-03", "2021-07-02"],
                                   "test": ["2021-07-03", "2021-12-31"]}
    assert protocol["origins"] == {"val": 78, "test": 169}
    assert protocol["classical"] == {"skipped": "not fitted (model.classical=false)"}     # --quick
    assert val["lstm.mase_h7"] != test["lstm.mase_h7"]
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


@pytest.mark.slow
def test_classical_peers_in_the_task(tmp_path):
    """ETS and ARIMA fitted by AIC on the training window of a shorter series, scored beside the nets, the
    better of the two on validation named; eval refits them the same way."""
    pytest.importorskip("statsmodels")
    shared_data("covid-hu")
    from neuralsight.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["train", "forecast", "--quick", "--out", str(tmp_path), "--no-progress",
                              "--set", "model.classical=true", "--set", 'data.start="2021-02-10"',
                              "--set", 'model.models=["gru"]', "--set", "train.steps=20", "--set",
                              "position.enabled=false"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "forecast").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    test, val, protocol = summary["metrics"]["test"], summary["metrics"]["val"], summary["forecast"]
    assert protocol["windows"]["train"] == ["2021-02-10", "2021-04-02"]
    for kind in ("ets", "arima"):
        fit = protocol["classical"][kind]
        assert fit["selected_by"] == "aic" and fit["aic"] == min(c["aic"] for c in fit["candidates"]
                                                                 if c["aic"] is not None)
        assert {f"{kind}.mase_h7", f"{kind}.relative_mae_h7", f"{kind}.coverage"} <= set(test)
        assert f"{kind}.mase_h7" in val
    assert len(protocol["classical"]["ets"]["candidates"]) == 6
    assert protocol["classical"]["ets"]["model"].startswith("ETS(A,")
    assert protocol["classical"]["arima"]["model"].startswith("ARIMA(")
    best = min(("ets", "arima"), key=lambda k: val[f"{k}.mase_h7"])
    assert protocol["best_classical"] == {"model": best, "chosen_on": "val"}
    assert summary["headline"]["name"] == "7-day MASE of the best recurrent net (gru, chosen on validation)"
    html = (run_dir / "report.html").read_text()
    assert protocol["classical"]["arima"]["model"] in html and "filtered forward" in html
    res = runner.invoke(app, ["eval", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["arima.mase_h7"] == pytest.approx(test["arima.mase_h7"], rel=1e-6)
    assert again["ets.coverage"] == pytest.approx(test["ets.coverage"], rel=1e-6)


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

"""The forecast task over a saved run, without training: predict on CSVs (typed options, several inputs, failed
ones), options it refuses, the report of an unfinished run, run names. The saved run is the 0.1.0 fixture."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import shared_data
from helpers import png_nonblank
from typer.testing import CliRunner

from neuralsight.cli import app
from neuralsight.errors import UserError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runs-v0.1" / "forecast"


@pytest.fixture
def saved(tmp_path):
    from neuralsight.tasks.base import SavedRun

    shared_data("covid-hu")
    (src,) = FIXTURE.iterdir()
    return SavedRun.open(shutil.copytree(src, tmp_path / "run"), device="cpu")


def _covid_rows(n: int) -> list[list[str]]:
    rows = list(csv.reader((shared_data("covid-hu") / "hungary_daily_cases.csv").open()))
    return rows[:n + 1]


def test_predict_several_csvs_own_columns_and_a_bad_one(saved, tmp_path):
    src = _covid_rows(400)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        with open(folder / f"{name}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["day", "sales"]] + [[r[0], r[1]] for r in src[1:]])
    (folder / "bad.csv").write_text("day,sales\n2021-01-01,3\n2021-01-02,lots\n")
    opts = saved.task.PredictOptions(horizon=5, date="day", target="sales")
    rows = saved.task.predict(saved, [folder], tmp_path / "out", opts)
    assert [Path(r["input"]).name for r in rows] == ["a.csv", "b.csv", "bad.csv"]
    bad = rows[2]
    assert set(bad) == {"input", "error"} and "bad.csv line 3: non-numeric value 'lots' in column 'sales'" in bad["error"]
    for row, name in zip(rows[:2], ("a", "b"), strict=True):
        assert row["horizon"] == 5 and row["from"] == "2021-02-24" and row["to"] == "2021-03-01"
        assert row["outputs"] == {"csv": str(tmp_path / "out" / f"forecast-{name}.csv"),
                                  "plot": str(tmp_path / "out" / f"forecast-{name}.png")}
        table = list(csv.DictReader(open(row["outputs"]["csv"])))
        assert [r["step"] for r in table] == ["1", "2", "3", "4", "5"] and table[0]["date"] == "2021-02-25"
        assert all(float(r["lstm_q0.1"]) <= float(r["lstm_q0.9"]) for r in table)
        assert png_nonblank(row["outputs"]["plot"])
    # Without the column options the run's own columns are looked for, and their absence is the error.
    rows = saved.task.predict(saved, [folder / "a.csv"], tmp_path / "o2", saved.task.PredictOptions())
    assert "has no date column 'date'; columns are: day, sales" in rows[0]["error"]


def test_predict_cli_prints_one_row_per_series_and_exits_2_on_a_failed_input(saved, tmp_path):
    good = tmp_path / "good.csv"
    with open(good, "w", newline="") as fh:
        csv.writer(fh).writerows(_covid_rows(300))
    missing = tmp_path / "missing.csv"
    res = CliRunner().invoke(app, ["predict", str(saved.path), str(good), str(missing), "--json",
                                   "--out", str(tmp_path / "p")])
    assert res.exit_code == 2
    rows = json.loads(res.stdout)
    assert rows[0]["input"] == str(good) and rows[0]["outputs"]["csv"] == str(tmp_path / "p" / "forecast-good.csv")
    assert rows[1]["input"] == str(missing) and "does not exist" in rows[1]["error"]
    res = CliRunner().invoke(app, ["predict", str(saved.path), "--set", "tile=64"])
    assert res.exit_code == 2 and "'tile' does not apply to a forecast run (its options: horizon, date, target)" \
        in res.output
    with pytest.raises(UserError, match="--horizon 15 is outside 1..14"):
        saved.task.predict(saved, [], tmp_path, saved.task.PredictOptions(horizon=15))


def test_predict_too_short_a_series_is_one_line(saved, tmp_path):
    short = tmp_path / "short.csv"
    with open(short, "w", newline="") as fh:
        csv.writer(fh).writerows(_covid_rows(20))
    (row,) = saved.task.predict(saved, [short], tmp_path / "o", saved.task.PredictOptions())
    assert "the series has 20 steps, shorter than one input window of 28" in row["error"]


def test_report_of_an_unfinished_run(tmp_path):
    from neuralsight.tasks.base import get_task

    (section,) = get_task("forecast").report(tmp_path)
    assert section.blocks[0].text == "no forecast.json: training did not finish"


def test_run_is_named_after_a_users_csv():
    from neuralsight import config as C
    from neuralsight.tasks.base import default_run_name, get_task

    task = get_task("forecast")
    assert default_run_name(task, C.build(task.Config, preset="covid"), None) == "covid"
    cfg = C.build(task.Config, preset="covid", overrides=['data.csv="/data/my_sales.csv"'])
    assert default_run_name(task, cfg, None) == "my_sales"
    cfg = C.build(task.Config, preset="covid", overrides=['data.data_dir="/data/Shop.CSV"'])
    assert default_run_name(task, cfg, None) == "Shop"


def test_bad_quantiles_are_a_config_error(tmp_path):
    from neuralsight import config as C
    from neuralsight.engine.runs import create
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks.base import get_task

    shared_data("covid-hu")
    task = get_task("forecast")
    cfg = C.build(task.Config, preset="covid", overrides=["model.quantiles=[0.9, 0.1]", "train.device=\"cpu\""])
    with pytest.raises(UserError, match=r"quantiles \[0.9, 0.1\] must be increasing"):
        task.build(cfg, setup(cfg.train), create("forecast", "q", root=tmp_path))


def test_best_is_chosen_on_the_validation_window_not_the_test_window(tmp_path):
    """Two nets built to disagree: "lstm" is the naive forecast, "gru" adds a ramp of +5 per step. The series is
    level through validation and ramps by +5 per step in the test window, so gru wins the test window and loses
    validation. The best (and the headline) must be lstm, chosen before the test window was looked at."""
    import datetime as dt
    from types import SimpleNamespace

    import numpy as np
    import torch

    from neuralsight import config as C
    from neuralsight.engine.runs import create
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks.base import get_task

    t = np.arange(160)
    values = np.where(t < 120, 100.0 + np.random.default_rng(0).normal(size=160), 100.0 + 5.0 * (t - 119))
    csv_path = tmp_path / "ramp.csv"
    d0 = dt.date(2021, 1, 1)
    csv_path.write_text("date,value\n" + "".join(f"{d0 + dt.timedelta(days=int(i))},{v}\n" for i, v in
                                                  zip(t, values, strict=True)))
    task = get_task("forecast")
    cfg = C.build(task.Config, preset="covid", overrides=[
        f'data.csv="{csv_path}"', 'data.target="value"', 'data.smoothing="none"', "data.log1p=false",
        'data.end=""', "data.backtest_days=40", "data.val_days=30", "model.input_window=14", "model.horizon=7",
        "model.quantiles=[]", 'model.models=["lstm", "gru"]', "model.hidden_size=4", "model.classical=false",
        "position.enabled=false", 'train.device="cpu"'])
    env, run = setup(cfg.train), create("forecast", "ramp", root=tmp_path)
    built = task.build(cfg, env, run)
    std = built["lstm"].p.transform.scaler.std
    with torch.no_grad():
        for kind, ramp in (("lstm", 0.0), ("gru", 5.0)):
            head = built[kind].model.head.linear
            head.weight.zero_()
            head.bias.copy_(torch.arange(1, 8) * ramp / std)        # last value + ramp * h, in model space
    fits = {k: SimpleNamespace(train_seconds=0.0, step=0, best_metric=None) for k in built}
    outcome = task.finish(cfg, env, run, built, fits)
    val, test = outcome.val, outcome.test
    assert test["gru.mase_h7"] < 0.1 * test["lstm.mase_h7"]                               # gru wins the test window
    assert val["lstm.mase_h7"] < val["gru.mase_h7"]                                       # lstm wins validation
    assert outcome.extra["forecast"]["best"]["model"] == "lstm"
    assert outcome.headline == "7-day MASE of the best recurrent net (lstm, chosen on validation)"
    assert outcome.value == test["lstm.mase_h7"]
    assert json.loads((run.path / "forecast.json").read_text())["shown_model"] == "lstm"


@pytest.mark.parametrize("calibrate", [True, False])
def test_a_too_narrow_band_is_widened_on_validation_to_its_nominal_level(tmp_path, calibrate):
    """A net whose 0.1..0.9 band is +-0.1 around the last value, on a noisy level series (noise std 1): alone it
    covers about 8 % of the test window; conformal widths from the validation window bring it near 0.80."""
    import datetime as dt
    from types import SimpleNamespace

    import numpy as np
    import torch

    from neuralsight import config as C
    from neuralsight.engine.runs import create
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks.base import get_task

    t = np.arange(400)
    values = 100.0 + np.random.default_rng(1).normal(size=400)
    csv_path = tmp_path / "level.csv"
    d0 = dt.date(2021, 1, 1)
    csv_path.write_text("date,value\n" + "".join(f"{d0 + dt.timedelta(days=int(i))},{v}\n" for i, v in
                                                  zip(t, values, strict=True)))
    task = get_task("forecast")
    cfg = C.build(task.Config, preset="covid", overrides=[
        f'data.csv="{csv_path}"', 'data.target="value"', 'data.smoothing="none"', "data.log1p=false",
        'data.end=""', "data.backtest_days=150", "data.val_days=150", "model.input_window=14", "model.horizon=3",
        'model.models=["lstm"]', "model.hidden_size=4", "model.classical=false", f"model.calibrate={str(calibrate).lower()}",
        "position.enabled=false", 'train.device="cpu"'])
    env, run = setup(cfg.train), create("forecast", "level", root=tmp_path)
    built = task.build(cfg, env, run)
    std = built["lstm"].p.transform.scaler.std
    with torch.no_grad():
        head = built["lstm"].model.head.linear
        head.weight.zero_()
        head.bias.copy_(torch.tensor([-0.1, 0.0, 0.1] * 3) / std)   # (H, Q) flattened: last value -0.1 / 0 / +0.1
    fits = {k: SimpleNamespace(train_seconds=0.0, step=0, best_metric=None) for k in built}
    outcome = task.finish(cfg, env, run, built, fits)
    coverage = outcome.test["lstm.coverage"]
    info = json.loads((run.path / "forecast.json").read_text())
    if calibrate:
        assert coverage == pytest.approx(0.80, abs=0.07) and len(info["calibration"]["lstm"]) == 3
        assert info["protocol"]["interval_calibration"] == "split conformal on the validation window"
    else:
        assert coverage < 0.2 and info["calibration"] == {}

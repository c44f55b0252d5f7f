"""models/forecaster.py and the forecast task's data handling: quantiles, baselines, no leakage.

Shapes, gradients, overfit-one-batch and the checkpoint round trip of the two forecasters are the shared
checks of tests/model_tester.py (tests/test_models.py).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from neuralsight.data.series import regularize
from neuralsight.models import create_model
from neuralsight.models.forecaster import (
    RecurrentForecaster,
    WindowMLP,
    naive,
    pinball_loss,
    point_index,
    seasonal_naive,
)


@pytest.mark.parametrize("name", ["forecaster", "window_mlp"])
def test_quantiles_never_cross_and_both_input_layouts_agree(name):
    model = create_model(name, input_window=11, horizon=7, hidden_size=9, quantiles=(0.1, 0.3, 0.5, 0.9))
    torch.nn.init.normal_(model.head.linear.weight, std=3.0)   # heads far apart, so unsorted ones would cross
    x = torch.randn(3, 11)
    y = model(x)
    assert (y.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(model(x[..., None]), y)      # (B, W) and (B, W, 1) agree


def test_residual_forecasters_start_as_the_naive_forecast():
    x = torch.randn(5, 6)
    for m in (WindowMLP(6, 4, 8), RecurrentForecaster("gru", 6, 4, 8)):
        torch.nn.init.zeros_(m.head.linear.weight)
        torch.nn.init.zeros_(m.head.linear.bias)
        # With a zero head a residual forecaster is exactly the naive forecast.
        torch.testing.assert_close(m(x)[..., 0], x[:, -1:].expand(5, 4))


def test_bad_quantiles_and_cell():
    with pytest.raises(ValueError, match="quantiles .* must be increasing"):
        RecurrentForecaster(quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="quantiles .* strictly between 0 and 1"):
        WindowMLP(quantiles=(0.5, 1.0))
    with pytest.raises(ValueError, match="cell must be one of .* got 'tcn'"):
        RecurrentForecaster(cell="tcn")


def test_pinball_loss_reference():
    pred = torch.tensor([[[1.0, 2.0, 3.0]]])
    target = torch.tensor([[2.5]])
    q = (0.1, 0.5, 0.9)
    ref = np.mean([max(qq * (2.5 - p), (qq - 1) * (2.5 - p)) for qq, p in zip(q, [1.0, 2.0, 3.0])])
    assert float(pinball_loss(pred, target, q)) == pytest.approx(ref)
    assert point_index(q) == 1 and point_index(()) == 0 and point_index((0.2, 0.4, 0.6, 0.8)) == 2
    assert float(pinball_loss(pred[..., :1], target, ())) == pytest.approx(1.5 ** 2)


def test_baselines_on_hand_made_series():
    y = torch.arange(30.0) * 10            # y[t] = 10 t
    origins = torch.tensor([13, 20])
    assert naive(y, origins, 3).tolist() == [[130, 130, 130], [200, 200, 200]]
    # same weekday last week: origin 13, h=1 -> t=14 -> value at 7; h=7 -> 13; h=8 -> 14 - 14 = ... t=21 - 14 = 7
    sn = seasonal_naive(y, origins, 9, season=7)
    assert sn[0].tolist() == [70, 80, 90, 100, 110, 120, 130, 70, 80]
    assert sn[1].tolist() == [140, 150, 160, 170, 180, 190, 200, 140, 150]
    weekly = torch.tensor([1.0, 2, 3, 4, 5, 6, 7] * 4)
    sn = seasonal_naive(weekly, torch.tensor([13]), 14, season=7)
    truth = weekly[14:28]
    torch.testing.assert_close(sn[0], truth)             # a perfect weekly cycle is forecast exactly
    with pytest.raises(ValueError, match="needs 7 steps of history"):
        seasonal_naive(y, torch.tensor([3]), 7, season=7)


def _cfg(**data):
    from neuralsight import config as C
    from neuralsight.tasks.forecast import Config

    sets = [f"data.{k}={v}" for k, v in data.items()] + ["model.input_window=14", "model.horizon=7"]
    return C.build(Config, overrides=sets)


def _series(values):
    d0 = dt.date(2021, 1, 1)
    return regularize([d0 + dt.timedelta(days=i) for i in range(len(values))], np.asarray(values, float))


def test_spike_after_the_split_is_invisible_to_training_and_scaler():
    from neuralsight.tasks.backtest import prepare_series
    from neuralsight.tasks.forecast import ForecastTrain

    cfg = _cfg(backtest_days=40, val_days=30, smoothing='"rolling7"')
    rng = np.random.default_rng(1)
    base = 100 + 10 * np.sin(np.arange(200) / 5) + rng.normal(size=200)
    clean = prepare_series(_series(base), cfg)
    spiked_values = base.copy()
    spiked_values[clean.val_start + 3] = 1e6         # in the validation part: never a training target or input
    spiked = prepare_series(_series(spiked_values), cfg)
    assert spiked.transform.to_dict() == clean.transform.to_dict()
    a = ForecastTrain("mlp", cfg, clean, "cpu")
    b = ForecastTrain("mlp", cfg, spiked, "cpu")
    torch.testing.assert_close(a.x, b.x)
    torch.testing.assert_close(a.y, b.y)
    assert not torch.equal(a.yv, b.yv)               # the validation part does see it
    spiked_test = base.copy()
    spiked_test[clean.test_start + 2] = 1e6          # in the backtest part: invisible to training and validation
    c = ForecastTrain("mlp", cfg, prepare_series(_series(spiked_test), cfg), "cpu")
    torch.testing.assert_close(a.x, c.x)
    torch.testing.assert_close(a.xv, c.xv)
    torch.testing.assert_close(a.yv, c.yv)


def test_backtest_scores_baselines_exactly():
    from neuralsight.tasks.backtest import backtest_origins, forecast_at, prepare_series, score

    cfg = _cfg(backtest_days=28, val_days=14, smoothing='"none"', log1p="false")
    week = [1.0, 2, 3, 4, 5, 6, 7]
    p = prepare_series(_series(week * 12), cfg)
    origins = backtest_origins(p, 7)
    assert int(origins[0]) == p.test_start - 1 and int(origins[-1]) + 7 == len(p.z) - 1
    f = forecast_at({}, p, origins, 7, 14, (), "cpu")
    week_ref = forecast_at({}, p, origins, 7, 14, (), "cpu")
    s = score(f, p, origins, 7)
    assert s["seasonal_naive"]["mae"] == 0.0                 # a perfect weekly cycle
    # naive: forecasting day d's value for day d+h on a 1..7 saw tooth has known error
    y = torch.tensor(week * 12)
    err = (y[origins][:, None] - y[origins[:, None] + torch.arange(1, 8)]).abs().double().mean()
    assert s["naive"]["mae"] == pytest.approx(float(err))
    assert week_ref["naive"]["point"].shape == (len(origins), 7)


def test_series_source_takes_csv_setting_data_file_and_catalog(tmp_path, monkeypatch):
    from neuralsight.errors import DataError as DE
    from neuralsight.tasks.backtest import load_series, series_source

    path = tmp_path / "mine.csv"
    path.write_text("day,sales\n" + "\n".join(f"2021-01-{i:02d},{i}" for i in range(1, 29)) + "\n")
    cfg = _cfg(csv=f'"{path}"', date='"day"', target='"sales"', smoothing='"none"', log1p="false")
    assert series_source(cfg.data) == path
    series, raw = load_series(cfg.data)
    assert series.values.tolist() == list(range(1, 29)) and raw.name == "sales"
    cfg = _cfg(data_dir=f'"{path}"', date='"day"', target='"sales"', end='"2021-01-10"')
    assert series_source(cfg.data) == path
    assert len(load_series(cfg.data)[1]) == 10
    monkeypatch.setenv("NEURALSIGHT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DE, match="dataset 'covid-hu' not found: need hungary_daily_cases.csv"):
        series_source(_cfg().data)

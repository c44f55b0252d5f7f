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


def _cfg(*sets, **data):
    from neuralsight import config as C
    from neuralsight.tasks.forecast import Config

    sets = [f"data.{k}={v}" for k, v in data.items()] + ["model.input_window=14", "model.horizon=7", *sets]
    return C.build(Config, overrides=sets)


def _series(values):
    d0 = dt.date(2021, 1, 1)
    return regularize([d0 + dt.timedelta(days=i) for i in range(len(values))], np.asarray(values, float))


def _split(values, cfg):
    from neuralsight.data.series import split_series

    return split_series(_series(values), cfg.data, cfg.model.input_window, cfg.model.horizon)


def test_spike_after_the_split_is_invisible_to_training_and_scaler():
    from neuralsight.tasks.forecast import ForecastTrain

    cfg = _cfg(backtest_days=40, val_days=30, smoothing='"rolling7"')
    rng = np.random.default_rng(1)
    base = 100 + 10 * np.sin(np.arange(200) / 5) + rng.normal(size=200)
    clean = _split(base, cfg)
    spiked_values = base.copy()
    spiked_values[clean.val_start + 3] = 1e6         # in the validation part: never a training target or input
    spiked = _split(spiked_values, cfg)
    assert spiked.transform.to_dict() == clean.transform.to_dict()
    a = ForecastTrain("mlp", cfg, clean, "cpu")
    b = ForecastTrain("mlp", cfg, spiked, "cpu")
    torch.testing.assert_close(a.x, b.x)
    torch.testing.assert_close(a.y, b.y)
    assert not torch.equal(a.yv, b.yv)               # the validation part does see it
    spiked_test = base.copy()
    spiked_test[clean.test_start + 2] = 1e6          # in the backtest part: invisible to training and validation
    c = ForecastTrain("mlp", cfg, _split(spiked_test, cfg), "cpu")
    torch.testing.assert_close(a.x, c.x)
    torch.testing.assert_close(a.xv, c.xv)
    torch.testing.assert_close(a.yv, c.yv)


def test_windows_and_origins_of_the_three_parts():
    cfg = _cfg(backtest_days=28, val_days=14, smoothing='"none"', log1p="false")
    p = _split(np.arange(100.0), cfg)
    assert (p.val_start, p.test_start) == (58, 72)
    val, test = p.origins("val", 7), p.origins("test", 7)
    # every target of a window's origins lies inside that window, and every such origin is there
    assert val.tolist() == list(range(57, 65)) and test.tolist() == list(range(71, 93))
    assert p.origins("test", 7, every=5).tolist() == [71, 76, 81, 86, 91]
    assert p.windows() == {"train": ["2021-01-01", "2021-02-27"], "val": ["2021-02-28", "2021-03-13"],
                           "test": ["2021-03-14", "2021-04-10"]}
    from neuralsight.errors import DataError as DE

    with pytest.raises(DE, match=r"data.val_days \(5\) and data.backtest_days \(28\) must each hold one forecast"):
        _split(np.arange(100.0), _cfg(backtest_days=28, val_days=5))


def _truth(y, origins, h):
    return y[np.asarray(origins)[:, None] + np.arange(1, h + 1)[None, :]]


def test_scores_by_hand_true_mase_relative_mae_and_coverage():
    """Scores of the naive baselines on a series worked by hand: the MASE scale is the in-sample seasonal naive
    MAE of the series up to each origin (not the test window), so seasonal naive does not score 1."""
    from neuralsight.tasks.forecast import forecast_at, score

    cfg = _cfg(backtest_days=14, val_days=7, smoothing='"none"', log1p="false", season=2)
    t = np.arange(40.0)
    y = np.where(t < 20, t, 20 + 3 * (t - 20) + 5 * (t % 2))    # a ramp, then a steeper zig-zag ramp
    cfg.model.horizon = 3
    p = _split(y, cfg)
    origins = p.origins("test", 3)
    assert origins.tolist() == list(range(25, 37))
    f = forecast_at({}, p, origins, cfg.model, "cpu")
    s = score(f, p, origins, nominal=None)
    truth = _truth(y, origins, 3)
    # scale at origin o: mean |y_t - y_{t-2}| over t = 2..o (the series known there, not the test window)
    scales = np.array([np.abs(y[2:o + 1] - y[:o - 1]).mean() for o in origins.tolist()])
    # origin 25: 18 steps of 2 (t = 2..19), 20 - 18 = 2, 28 - 19 = 9, then 6 for t = 22..25: 71 over 24 terms
    assert scales[0] == pytest.approx(71 / 24)
    for name in ("naive", "seasonal_naive"):
        err = np.abs(f[name]["point"] - truth)
        assert s[name]["mase_h"] == pytest.approx((err / scales[:, None]).mean(0).tolist())
        assert s[name]["mase"] == pytest.approx(float((err / scales[:, None]).mean()))
        assert s[name]["mae"] == pytest.approx(float(err.mean()))
    sn_err = np.abs(f["seasonal_naive"]["point"] - truth).mean(0)
    assert s["naive"]["relative_mae_h"] == pytest.approx((np.abs(f["naive"]["point"] - truth).mean(0) / sn_err).tolist())
    assert s["seasonal_naive"]["relative_mae"] == 1.0 and s["seasonal_naive"]["mase"] != pytest.approx(1.0)
    # a net's interval: coverage against its nominal level, by hand
    f["toy"] = {"point": truth.copy(), "lower": truth - 0.5, "upper": truth + 0.5}
    f["toy"]["lower"][:6] += 1.0                        # half the origins' intervals miss above the truth
    s = score(f, p, origins, nominal=0.8)
    assert s["toy"]["coverage"] == 0.5 and s["toy"]["coverage_nominal"] == 0.8 and s["toy"]["mase"] == 0.0


def test_a_series_that_seasonal_naive_forecasts_exactly_is_one_clear_error():
    from neuralsight.errors import DataError as DE
    from neuralsight.tasks.forecast import forecast_at, score

    cfg = _cfg(backtest_days=28, val_days=14, smoothing='"none"', log1p="false")
    p = _split([1.0, 2, 3, 4, 5, 6, 7] * 12, cfg)
    origins = p.origins("test", 7)
    f = forecast_at({}, p, origins, cfg.model, "cpu")
    np.testing.assert_allclose(f["seasonal_naive"]["point"], _truth(p.values, origins, 7))   # exact
    with pytest.raises(DE, match="cannot score the forecasts: the training part repeats exactly with period 7"):
        score(f, p, origins, nominal=None)


def test_best_is_chosen_on_validation_and_never_on_test():
    from neuralsight.tasks.forecast import choose

    val = {"lstm": {"mase_h": [0.1, 0.9]}, "gru": {"mase_h": [0.5, 0.4]}, "rnn": {"mase_h": [0.3, 0.4]}}
    assert choose(val, ["lstm", "gru", "rnn"], 2) == "gru"        # ties go to the first listed
    assert choose(val, ["lstm", "gru", "rnn"], 1) == "lstm"


def test_series_source_takes_csv_setting_data_file_and_catalog(tmp_path, monkeypatch):
    from neuralsight.data.series import load_series, series_source, target_description
    from neuralsight.errors import DataError as DE

    path = tmp_path / "mine.csv"
    path.write_text("day,sales\n" + "\n".join(f"2021-01-{i:02d},{i}" for i in range(1, 29)) + "\n")
    cfg = _cfg(csv=f'"{path}"', date='"day"', target='"sales"', smoothing='"none"', log1p="false")
    assert series_source(cfg.data) == path
    series, raw = load_series(cfg.data)
    assert series.values.tolist() == list(range(1, 29)) and raw.name == "sales"
    assert target_description(cfg.data, series) == "sales: daily values"
    cfg = _cfg(data_dir=f'"{path}"', date='"day"', target='"sales"', end='"2021-01-10"')
    assert series_source(cfg.data) == path
    assert len(load_series(cfg.data)[1]) == 10
    assert target_description(cfg.data, series) == "sales: 7-day trailing mean of the daily values"
    monkeypatch.setenv("NEURALSIGHT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DE, match="dataset 'covid-hu' not found: need hungary_daily_cases.csv"):
        series_source(_cfg().data)

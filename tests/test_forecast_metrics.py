"""MASE (Hyndman and Koehler 2006), relative MAE and interval coverage on short series worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralsight.engine import forecast_metrics as fm

TRAIN = [1.0, 3.0, 2.0, 4.0, 3.0]


def test_seasonal_naive_scale_by_hand():
    # m = 1: |3-1| + |2-3| + |4-2| + |3-4| = 6 over 4 differences
    assert fm.seasonal_naive_scale(TRAIN, 1) == pytest.approx(1.5)
    # m = 2: |2-1| + |4-3| + |3-2| = 3 over 3
    assert fm.seasonal_naive_scale(TRAIN, 2) == pytest.approx(1.0)
    # m = 4: |3-1| over 1
    assert fm.seasonal_naive_scale(TRAIN, 4) == pytest.approx(2.0)


def test_mase_by_hand():
    actual, forecast = [5.0, 4.0], [4.5, 4.0]             # MAE (0.5 + 0) / 2 = 0.25
    assert fm.mase(TRAIN, actual, forecast, 1) == pytest.approx(0.25 / 1.5)
    assert fm.mase(TRAIN, actual, forecast, 2) == pytest.approx(0.25)
    # the naive forecast (last training value, 3) repeated: MAE (2 + 1) / 2 = 1.5 -> MASE 1.0 at m = 1
    assert fm.mase(TRAIN, actual, [3.0, 3.0], 1) == pytest.approx(1.0)
    # tensors and arrays alike; units cancel
    t = torch.tensor(TRAIN, dtype=torch.float64)
    assert fm.mase(t * 10, np.array(actual) * 10, torch.tensor(forecast) * 10, 2) == pytest.approx(0.25)


def test_rolling_origin_mase_by_hand():
    series = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 4.0]
    # origin 3 knows 1 3 2 4 (naive scale 5/3) and forecasts 3 5; origin 4 knows 1 3 2 4 3 (1.5), forecasts 5 4
    forecast = [[4.0, 4.0], [4.0, 4.0]]                    # errors 1 1 and 1 0
    out = fm.rolling_origin_mase(series, [3, 4], forecast, 1)
    assert out["scale"] == pytest.approx([5 / 3, 1.5])
    assert out["mase_h"] == pytest.approx([(0.6 + 2 / 3) / 2, (0.6 + 0.0) / 2])
    assert out["mase"] == pytest.approx((0.6 + 0.6 + 2 / 3 + 0.0) / 4)
    assert out["period"] == 1
    # the training part may start later: origin 4 from index 1 knows 3 2 4 3 (|2-3|+|4-2|+|3-4| = 4 over 3)
    late = fm.rolling_origin_mase(series, [4], [[4.0, 4.0]], 1, start=1)
    assert late["scale"] == pytest.approx([4 / 3])
    assert late["mase"] == pytest.approx((1 + 0) / 2 / (4 / 3))


def test_trend_plus_season_by_hand():
    # y = 10 sin(2 pi t / 7) + 0.5 t: every seasonal difference y_t - y_{t-7} is 7 * 0.5 = 3.5, in sample
    # and out of sample. Repeating the last season misses by 3.5 at every step (MASE 1); repeating the
    # season before it misses by 7 (MASE 2); the true values score 0.
    t = np.arange(70, dtype=np.float64)
    y = 10 * np.sin(2 * np.pi * t / 7) + 0.5 * t
    origins, horizon = [55, 56, 57], 7
    last_season = np.array([[y[o + 1 + h - 7] for h in range(horizon)] for o in origins])
    season_before = np.array([[y[o + 1 + h - 14] for h in range(horizon)] for o in origins])
    truth = np.array([[y[o + 1 + h] for h in range(horizon)] for o in origins])
    assert fm.rolling_origin_mase(y, origins, last_season, 7)["scale"] == pytest.approx([3.5] * 3)
    assert fm.rolling_origin_mase(y, origins, last_season, 7)["mase"] == pytest.approx(1.0)
    assert fm.rolling_origin_mase(y, origins, season_before, 7)["mase"] == pytest.approx(2.0)
    assert fm.rolling_origin_mase(y, origins, truth, 7)["mase"] == pytest.approx(0.0, abs=1e-12)


def test_scale_uses_only_data_known_at_the_origin():
    rng = np.random.default_rng(0)
    y = rng.normal(size=40).cumsum()
    changed = y.copy()
    changed[31:] += rng.normal(scale=5.0, size=9)            # a wilder future changes the errors, not the scale
    forecast = np.zeros((3, 2)) + y[30]
    a = fm.rolling_origin_mase(y, [28, 29, 30], forecast, 1)
    b = fm.rolling_origin_mase(changed, [28, 29, 30], forecast, 1)
    assert a["scale"] == b["scale"]
    assert a["scale"][-1] == pytest.approx(np.abs(np.diff(y[:31])).mean())
    assert a["mase"] != pytest.approx(b["mase"])


def test_relative_mae_and_coverage_by_hand():
    assert fm.relative_mae([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], [2.0, 3.0, 4.0]) == pytest.approx(1 / 3)
    cov = fm.interval_coverage([1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, 5.0], [2.0, 3.0, 3.0, 6.0], 0.8)
    assert cov == {"coverage": 0.5, "nominal": 0.8, "difference": pytest.approx(-0.3), "n": 4}


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="needs at least 8"):
        fm.seasonal_naive_scale([1.0] * 7, 7)
    with pytest.raises(ValueError, match="repeats exactly with period 2"):
        fm.mase([1.0, 2.0, 1.0, 2.0], [1.0], [1.0], 2)
    with pytest.raises(ValueError, match="same shape"):
        fm.mase(TRAIN, [1.0, 2.0], [1.0], 1)
    with pytest.raises(ValueError, match="NaN"):
        fm.mase([1.0, float("nan"), 2.0], [1.0], [1.0], 1)
    with pytest.raises(ValueError, match="so that all 2 steps ahead are observed"):
        fm.rolling_origin_mase([1.0, 2.0, 3.0, 4.0], [2], [[1.0, 1.0]], 1)
    with pytest.raises(ValueError, match="lower bound above upper"):
        fm.interval_coverage([1.0], [2.0], [0.0], 0.8)
    with pytest.raises(ValueError, match="nominal level"):
        fm.interval_coverage([1.0], [0.0], [2.0], 80)

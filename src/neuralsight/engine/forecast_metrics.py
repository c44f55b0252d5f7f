"""Forecast accuracy: MASE as Hyndman and Koehler (2006) define it, relative MAE, interval coverage.

**MASE** scales the forecast's absolute errors by the *in-sample* mean absolute error of the seasonal
naive forecast with period ``m`` on the training part (Hyndman & Koehler 2006, eq. for ``q_t``)::

    scale = 1 / (n - m) * sum_{t=m}^{n-1} |y_t - y_{t-m}|          (training part y_0 .. y_{n-1})
    MASE  = mean_t |y_t - f_t| / scale                               (over the forecast part)

With ``m = 1`` the scale is the one-step naive forecast's in-sample MAE (the non-seasonal MASE). The scale
comes from data the forecaster saw, never from the test window, so a seasonal-naive forecast over the
test window does not score 1.0 by construction and a score below 1 means "better than the in-sample
one-step (or one-season) naive error".

Two ways to choose the training part, both offered:

- one training window (``mase(training, actual, forecast, m)``): every forecast scaled by the same
  in-sample error, e.g. the series before the test window;
- rolling origins (``rolling_origin_mase``): a backtest forecasts from many origins ``o``; the forecast
  from ``o`` is scaled by the in-sample error of ``y[start .. o]``, the data known at that origin. The
  score is the mean of all scaled errors (per horizon: over origins), as the scaled errors ``q_t`` of the
  paper are averaged.

Inputs are 1-D (series) or ``(N, H)`` (origins x horizons) array-likes (NumPy arrays, CPU tensors,
lists) in the same units; outputs are floats or lists of floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _array(x, name: str, ndim: int | None = None):
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values; drop or fill them before scoring")
    return a


def seasonal_naive_scale(training, period: int) -> float:
    """In-sample MAE of the seasonal naive forecast ``y_t = y_{t-m}`` on ``training`` (1-D).

    Raises:
        ValueError: when the training part is not longer than ``period`` or its scale is 0 (a series that
            repeats exactly with period ``m``: MASE is undefined there).
    """
    import numpy as np

    y = _array(training, "training", 1)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    if len(y) <= period:
        raise ValueError(f"the training part has {len(y)} values; the seasonal naive scale with period {period} "
                         f"needs at least {period + 1}")
    scale = float(np.abs(y[period:] - y[:-period]).mean())
    if scale == 0.0:
        raise ValueError(f"the training part repeats exactly with period {period} (in-sample seasonal-naive MAE 0): "
                         "MASE is undefined; choose another period or training window")
    return scale


def mae(actual, forecast) -> float:
    """Mean absolute error of same-shaped ``actual`` and ``forecast``."""
    import numpy as np

    a, f = _array(actual, "actual"), _array(forecast, "forecast")
    if a.shape != f.shape:
        raise ValueError(f"actual {a.shape} and forecast {f.shape} must have the same shape")
    return float(np.abs(a - f).mean())


def mase(training, actual, forecast, period: int) -> float:
    """MASE of ``forecast`` against ``actual``, scaled by the seasonal-naive in-sample MAE of ``training``.

    Args:
        training: 1-D series the forecaster was fitted on (before the forecast part).
        actual: observed values of the forecast part, any shape.
        forecast: forecasts of the same shape.
        period: seasonal period ``m`` (1: naive scaling).
    """
    return mae(actual, forecast) / seasonal_naive_scale(training, period)


def rolling_origin_mase(series, origins: Sequence[int], forecast, period: int, start: int = 0) -> dict:
    """MASE of a rolling-origin backtest, each origin scaled by the data known at that origin.

    Args:
        series: 1-D observed series (original units).
        origins: ``N`` indices ``o``: the last observed value of each forecast; the forecast from ``o``
            covers ``series[o + 1 .. o + H]``.
        forecast: ``(N, H)`` forecasts.
        period: seasonal period ``m`` of the scale (1: naive).
        start: first index of the training part (e.g. to skip a warm-up the model never sees).

    Returns:
        ``{"mase": overall, "mase_h": [per horizon 1..H], "scale": [per origin], "period": m}``.
    """
    import numpy as np

    y = _array(series, "series", 1)
    f = _array(forecast, "forecast", 2)
    o = np.asarray([int(v) for v in origins], dtype=np.int64)
    n, h = f.shape
    if len(o) != n:
        raise ValueError(f"{len(o)} origins but {n} forecast rows")
    if n == 0:
        raise ValueError("no origins to score")
    if o.min() < start or o.max() + h >= len(y):
        raise ValueError(f"origins must lie in {start}..{len(y) - h - 1} so that all {h} steps ahead are observed")
    actual = y[o[:, None] + np.arange(1, h + 1)[None, :]]                                # (N, H)
    scale = np.array([seasonal_naive_scale(y[start:oi + 1], period) for oi in o])       # (N,)
    scaled = np.abs(actual - f) / scale[:, None]                                         # (N, H)
    return {"mase": float(scaled.mean()), "mase_h": scaled.mean(0).tolist(), "scale": scale.tolist(),
            "period": int(period)}


def relative_mae(actual, forecast, baseline) -> float:
    """MAE of ``forecast`` over the MAE of ``baseline`` on the same ``actual`` values (below 1: better)."""
    reference = mae(actual, baseline)
    if reference == 0.0:
        raise ValueError("the baseline forecast is exact (MAE 0): relative MAE is undefined")
    return mae(actual, forecast) / reference


def interval_coverage(actual, lower, upper, nominal: float) -> dict:
    """Share of ``actual`` values inside ``[lower, upper]`` (bounds included), beside the nominal level.

    Args:
        nominal: the level the interval claims, e.g. 0.80 for the 10 %..90 % quantiles.

    Returns:
        ``{"coverage", "nominal", "difference" (coverage - nominal), "n"}``.
    """

    a, lo, hi = _array(actual, "actual"), _array(lower, "lower"), _array(upper, "upper")
    if not (a.shape == lo.shape == hi.shape):
        raise ValueError(f"actual {a.shape}, lower {lo.shape} and upper {hi.shape} must have the same shape")
    if not 0.0 < nominal < 1.0:
        raise ValueError(f"nominal level must lie in (0, 1), got {nominal}")
    if (lo > hi).any():
        raise ValueError("lower bound above upper bound; pass the lower quantile first")
    coverage = float(((a >= lo) & (a <= hi)).mean()) if a.size else math.nan
    return {"coverage": coverage, "nominal": float(nominal), "difference": coverage - float(nominal),
            "n": int(a.size)}

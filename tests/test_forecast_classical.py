"""The classical peers (models/forecaster.py): structure chosen by AIC on the training window, parameters fixed,
filtered forward to each origin; against statsmodels used directly, and skipped with a hint without it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("statsmodels")

from neuralsight.models import forecaster as F  # noqa: E402


def _ar1(n: int, phi: float = 0.7, mean: float = 5.0, seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x + mean


def test_kpss_differences_like_ndiffs():
    e = np.random.default_rng(0).normal(size=300)
    assert F.kpss_differences(_ar1(300)) == 0                 # stationary
    assert F.kpss_differences(np.cumsum(e)) == 1              # a random walk
    assert F.kpss_differences(np.cumsum(np.cumsum(e))) == 2   # integrated twice


def test_candidate_grids_are_the_stated_ones():
    assert [name for name, _ in F._ets_candidates(100, 7)] == [
        "ETS(A,N,N)", "ETS(A,N,A)", "ETS(A,A,N)", "ETS(A,A,A)", "ETS(A,Ad,N)", "ETS(A,Ad,A)"]
    assert [name for name, _ in F._ets_candidates(20, 7)] == ["ETS(A,N,N)", "ETS(A,A,N)", "ETS(A,Ad,N)"]
    names = [name for name, _ in F._arima_candidates(1)]
    assert len(names) == 32 and names[:2] == ["ARIMA(0,1,0)", "ARIMA(0,1,0) with drift"]
    assert names[-1] == "ARIMA(3,1,3) with drift"
    assert [name for name, _ in F._arima_candidates(0, 1)] == [
        "ARIMA(0,0,0)", "ARIMA(0,0,0) with mean", "ARIMA(0,0,1)", "ARIMA(0,0,1) with mean",
        "ARIMA(1,0,0)", "ARIMA(1,0,0) with mean", "ARIMA(1,0,1)", "ARIMA(1,0,1) with mean"]
    assert len(F._arima_candidates(2)) == 16                   # no constant once differenced twice


def test_arima_is_chosen_by_aic_and_matches_statsmodels():
    from statsmodels.tsa.arima.model import ARIMA

    x = _ar1(160)
    fit = F.fit_classical("arima", x, max_order=1)
    assert fit.spec == "ARIMA(1,0,0) with mean"
    assert len(fit.candidates) == 8 and fit.aic == min(c["aic"] for c in fit.candidates)
    ref = ARIMA(x, order=(1, 0, 0), trend="c").fit()
    np.testing.assert_allclose(fit.result.params, ref.params, rtol=1e-6)
    assert fit.aic == pytest.approx(ref.aic) and 0.5 < fit.result.params[1] < 0.9   # phi near 0.7
    with pytest.raises(ValueError, match="unknown classical model 'prophet'"):
        F.fit_classical("prophet", x)


def test_ets_finds_trend_and_season():
    rng = np.random.default_rng(1)
    t = np.arange(84.0)
    seasonal = 0.1 * t + np.tile([0.0, 1, 2, 1, 0, -1, -2], 12) + 0.2 * rng.normal(size=84)
    fit = F.fit_classical("ets", seasonal, season=7)
    assert fit.spec == "ETS(A,A,A)" and len(fit.candidates) == 6
    assert fit.aic == min(c["aic"] for c in fit.candidates)
    trend_only = F.fit_classical("ets", 0.1 * t + 0.2 * rng.normal(size=84), season=1)   # m = 1: no season
    assert trend_only.spec == "ETS(A,A,N)" and len(trend_only.candidates) == 3
    assert trend_only.describe()["selected_by"] == "aic" and trend_only.describe()["model"] == "ETS(A,A,N)"


@pytest.mark.parametrize("kind", ["ets", "arima"])
def test_forecasts_filter_forward_without_refitting_and_without_looking_ahead(kind):
    """From origin t the forecast is the training-window fit run over z[:t+1] (parameters, noise variance
    included, unchanged): statsmodels' own ``apply(z[:t+1]).get_forecast``; later values change nothing."""
    z = _ar1(100, seed=3) + 0.02 * np.arange(100)
    fit = F.fit_classical(kind, z[:60], season=1, max_order=1)
    origins = np.array([59, 70, 85])
    point, lower, upper = fit.forecast(z, origins, 5, nominal=0.8)
    for k, t in enumerate(origins):
        ref = fit.result.apply(z[: t + 1]).get_forecast(5)
        bounds = np.asarray(ref.conf_int(alpha=0.2))
        np.testing.assert_allclose(point[k], ref.predicted_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(lower[k], bounds[:, 0], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(upper[k], bounds[:, 1], rtol=1e-9, atol=1e-9)
    changed = z.copy()
    changed[71:] += 100.0                                    # after the second origin
    again = fit.forecast(changed, origins[:2], 5, nominal=0.8)
    np.testing.assert_allclose(again[0], point[:2])
    with pytest.raises(ValueError, match="runs past the series"):
        fit.forecast(z, np.array([97]), 5, nominal=0.8)


def test_the_task_skips_the_peers_with_a_hint_without_statsmodels(monkeypatch):
    import datetime as dt

    from neuralsight import config as C
    from neuralsight.data.series import regularize, split_series
    from neuralsight.tasks.forecast import Config, fit_peers

    def missing():
        raise ModuleNotFoundError("the ETS and ARIMA peers need statsmodels, which is not installed: "
                                  "pip install statsmodels", name="statsmodels")

    monkeypatch.setattr(F, "_statsmodels", missing)
    cfg = C.build(Config, overrides=["model.input_window=14", "model.horizon=7", "data.backtest_days=28",
                                     "data.val_days=14", 'data.smoothing="none"'])
    d0 = dt.date(2021, 1, 1)
    series = regularize([d0 + dt.timedelta(days=i) for i in range(120)], _ar1(120) + 10)
    p = split_series(series, cfg.data, 14, 7)
    peers, hint = fit_peers(p, cfg.model)
    assert peers == {} and "classical peers skipped" in hint and "pip install statsmodels" in hint

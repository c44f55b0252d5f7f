"""Backtests and scores of the forecast task: forecasts from every origin of a window, the classical peers,
MAE / RMSE / true MASE / relative MAE / interval coverage per model and horizon, the conformal calibration of
the intervals on the validation window, and the choice of the "best" model on validation.

``tasks/forecast.py`` (the task) and the benchmarks call these; configs are the task's, duck-typed.
"""

from __future__ import annotations

from neuralsight.data.series import SplitSeries
from neuralsight.errors import DataError

HORIZONS, CLASSICAL = (1, 7, 14), ("ets", "arima")


def forecast_at(models: dict, p: SplitSeries, origins, m, device, peers: dict | None = None,
                widths: dict | None = None) -> dict:
    """Forecasts from each origin (``forecast_origins``), intervals widened by conformal ``widths`` if given."""
    from neuralsight.models.forecaster import forecast_origins, widen

    f = forecast_origins(models, p, origins, m.horizon, m.input_window, m.quantiles, m.nominal, device, peers)
    return widen(f, widths, p.transform) if widths else f


def fit_peers(p: SplitSeries, m) -> tuple[dict, str | None]:
    """ETS and ARIMA fitted on the training window (``{}`` and the hint why when they are skipped)."""
    from neuralsight.engine import progress
    from neuralsight.models.forecaster import fit_classical

    try:
        with progress.status("fitting ETS and ARIMA on the training window (structure by AIC)"):
            return {k: fit_classical(k, p.z[:p.val_start].double().numpy(), p.season) for k in CLASSICAL}, None
    except ModuleNotFoundError as err:
        progress.line(f"classical peers skipped: {err}")
        return {}, f"classical peers skipped: {err}"
    except ValueError as err:
        raise DataError(f"{p.series.source}: {err}", "lengthen the training window or model.classical=false") from None


def score(forecasts: dict, p: SplitSeries, origins, nominal: float | None) -> dict:
    """Per model: MAE, RMSE, MASE (period ``p.season``), MAE over seasonal naive's, overall and per horizon
    (``*_h``), and the interval's coverage beside ``nominal``."""
    import numpy as np

    from neuralsight.engine import forecast_metrics as fm

    y, o, sn = np.asarray(p.values, dtype=np.float64), origins.numpy(), forecasts["seasonal_naive"]["point"]
    truth = y[o[:, None] + np.arange(1, sn.shape[1] + 1)[None, :]]                     # (N, H)
    scores = {}
    try:
        for name, f in forecasts.items():
            point, mase = f["point"], fm.rolling_origin_mase(y, o, f["point"], p.season)
            scores[name] = s = {
                "mae": fm.mae(truth, point), "rmse": float(np.sqrt(((point - truth) ** 2).mean())),
                "mase": mase["mase"], "relative_mae": fm.relative_mae(truth, point, sn),
                "mae_h": np.abs(point - truth).mean(0).tolist(), "mase_h": mase["mase_h"],
                "relative_mae_h": [fm.relative_mae(truth[:, i], point[:, i], sn[:, i]) for i in range(sn.shape[1])]}
            if f["lower"] is not None and nominal:
                cov = fm.interval_coverage(truth, f["lower"], f["upper"], nominal)
                s.update(coverage=cov["coverage"], coverage_nominal=cov["nominal"])
    except ValueError as err:
        raise DataError(f"{p.series.source}: cannot score the forecasts: {err}", "set data.season or use another "
                        "series (MASE needs a training part that seasonal naive does not forecast exactly)") from None
    return scores


def flat_metrics(scores: dict) -> dict:
    """``{model}.{mase, mae, rmse, relative_mae, coverage, coverage_nominal}`` and ``.mase_h7`` etc. at HORIZONS."""
    out = {}
    for name, s in scores.items():
        out.update({f"{name}.{k}": s[k] for k in ("mase", "mae", "rmse", "relative_mae", "coverage",
                                                  "coverage_nominal") if k in s})
        out.update({f"{name}.{k}_h{h}": s[f"{k}_h"][h - 1] for k in ("mase", "relative_mae") for h in HORIZONS
                    if h <= len(s["mase_h"])})
    return out


def backtests(models: dict, p: SplitSeries, cfg, device, peers: dict) -> dict:
    """``{window: (origins, forecasts, scores)}`` for the validation and the test window, and ``calibration``:
    the conformal widths fitted on the validation window (``model.calibrate``), applied to the test window."""
    import numpy as np

    from neuralsight.models.forecaster import conformal_widths

    out, m, widths = {}, cfg.model, None
    for window in ("val", "test"):
        o = p.origins(window, m.horizon, cfg.data.origin_every)
        f = forecast_at(models, p, o, m, device, peers, widths)
        out[window] = (o, f, score(f, p, o, m.nominal))
        if window == "val" and m.calibrate and m.nominal:
            truth = np.asarray(p.values, dtype=np.float64)[o.numpy()[:, None] + np.arange(1, m.horizon + 1)]
            widths = conformal_widths(f, truth, p.transform, m.nominal)
    return {**out, "calibration": {k: v.tolist() for k, v in (widths or {}).items()}}


def choose(val_scores: dict, names: list[str], h: int) -> str:
    """The name with the lowest validation MASE ``h`` steps ahead (the first of equals)."""
    return min(names, key=lambda k: (val_scores[k]["mase_h"][h - 1], names.index(k)))

"""The forecast task's series and its rolling-origin backtest (``tasks/forecast.py`` is the task itself).

This module holds which CSV a run reads (``data.*``), the cut to ``[data.start, data.end]`` and the smoothing,
the split in time (train / validation / backtest, the transform fitted on the training part only), the
forecasts of every model and baseline from each backtest origin, and their scores.

Metrics (original units of the prepared series): MAE, RMSE, and MASE, which here is the model's MAE
divided by the seasonal naive forecast's MAE on the same origins and horizon (seasonal naive = 1.0,
below 1 is better). Naive and seasonal naive always run beside the nets; ETS and ARIMA join with
``model.classical=true`` (needs statsmodels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import bounded, choice
from neuralsight.errors import ConfigError, DataError

NEURAL = ("lstm", "gru", "rnn", "mlp")
RECURRENT = ("lstm", "gru", "rnn")
BASELINES = ("naive", "seasonal_naive")
CLASSICAL = ("ets", "arima")
REPORT_HORIZONS = (1, 7, 14)


@dataclass
class DataConfig:
    dataset: str = "covid-hu"
    data_dir: str | None = None
    csv: str | None = field(default=None, metadata={"help": "any CSV file (overrides dataset)"})
    date: str = "date"
    target: str = "new_cases"
    fill: str = choice("interpolate", ("interpolate", "zero", "previous", "error"))
    smoothing: str = choice("rolling7", ("none", "rolling7", "weekly"))
    log1p: bool = True
    start: str = field(default="", metadata={"help": "first date to use (YYYY-MM-DD, empty: all)"})
    end: str = field(default="", metadata={"help": "last date to use (YYYY-MM-DD, empty: all)"})
    backtest_days: int = bounded(182, min=1, help="last steps of the series scored by the backtest")
    val_days: int = bounded(91, min=1, help="steps before the backtest used for early stopping")
    origin_every: int = bounded(1, min=1, help="steps between backtest origins")
    season: int = bounded(0, min=0, help="seasonal naive period (0: 7 for daily, 52 for weekly data)")


# ---- the series split in time ----------------------------------------------------------------------

@dataclass
class Prepared:
    """The prepared series split in time, in original units (``values``) and model space (``z``)."""

    series: object                 # data.series.Series after smoothing (original units)
    raw_filled: int                # dates filled in the raw file
    fill_report: str
    transform: object              # data.series.Transform, fitted on values[:val_start]
    z: object                      # (T,) float32 tensor, model space
    val_start: int
    test_start: int
    season: int

    @property
    def values(self):
        return self.series.values


def series_source(data: DataConfig, csv_override: Path | None = None) -> Path:
    """Which CSV to read: an explicit file, data.csv, --data pointing at a file, or the catalog's covid-hu."""
    if csv_override is not None:
        return Path(csv_override)
    if data.csv:
        return Path(data.csv).expanduser()
    if data.data_dir and Path(data.data_dir).expanduser().is_file():
        return Path(data.data_dir).expanduser()
    from neuralsight.data.catalog import locate

    if data.dataset != "covid-hu":
        raise DataError(f"dataset '{data.dataset}' is not a series", "use covid-hu or data.csv=FILE")
    return locate("covid-hu", data.data_dir) / "hungary_daily_cases.csv"


def load_series(data: DataConfig, csv_override: Path | None = None):
    """Read, cut to [start, end], and smooth; returns (prepared Series, raw Series)."""
    import datetime as dt

    from neuralsight.data.series import Series, prepare_values, read_csv

    path = series_source(data, csv_override)
    raw = read_csv(path, data.date, data.target, fill=data.fill)
    keep = [True] * len(raw)
    for key, cmp in (("start", lambda d, b: d >= b), ("end", lambda d, b: d <= b)):
        text = getattr(data, key)
        if text:
            try:
                bound = dt.date.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"config key 'data.{key}' = {text!r} is not a date", "use YYYY-MM-DD") from None
            keep = [k and cmp(d, bound) for k, d in zip(keep, raw.dates, strict=True)]
    if not all(keep):
        idx = [i for i, k in enumerate(keep) if k]
        if not idx:
            raise ConfigError(f"data.start/data.end leave no dates of {path} (it spans {raw.dates[0]}..{raw.dates[-1]})")
        raw = Series(dates=raw.dates[idx[0]: idx[-1] + 1], values=raw.values[idx[0]: idx[-1] + 1], name=raw.name,
                     source=raw.source, step_days=raw.step_days,
                     filled=[d for d in raw.filled if raw.dates[idx[0]] <= d <= raw.dates[idx[-1]]], fill=raw.fill)
    return prepare_values(raw, data.smoothing), raw


def season_of(data: DataConfig, series) -> int:
    return data.season or (7 if series.step_days == 1 else 52 if series.step_days == 7 else 1)


def prepare_series(series, cfg, raw=None, transform=None) -> Prepared:
    """Split ``series`` in time and fit the transform on the training part only (unless one is given).

    ``cfg`` is the forecast task's config (its ``data`` and ``model`` sections).
    """
    import torch

    from neuralsight.data.series import Transform, check_length

    d, m = cfg.data, cfg.model
    season = season_of(d, series)
    check_length(series, m.input_window, m.horizon, min_extra=d.val_days + d.backtest_days)
    test_start = len(series) - d.backtest_days
    val_start = test_start - d.val_days
    if val_start < max(m.input_window, season) + m.horizon:
        raise DataError(f"{series.source}: only {val_start} steps before validation; need at least "
                        f"{max(m.input_window, season) + m.horizon} for one training window",
                        "lower data.backtest_days, data.val_days or model.input_window")
    if transform is None:
        transform = Transform.fit(series.values[:val_start], log1p=d.log1p)
    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    raw = raw if raw is not None else series
    return Prepared(series=series, raw_filled=len(raw.filled), fill_report=raw.fill_report(), transform=transform,
                    z=z, val_start=val_start, test_start=test_start, season=season)


def prepare_whole(series, raw, transform, data: DataConfig, input_window: int, horizon: int) -> Prepared:
    """``series`` unsplit (both split indices at its end), to forecast ``horizon`` steps after its last date."""
    import math

    import torch

    from neuralsight.data.series import check_length

    check_length(series, max(input_window, 2 * 7), 0)
    season = season_of(data, series)
    if len(series) - 1 - season * math.ceil(horizon / season) < 0:
        raise DataError(f"{series.source}: too short for a seasonal naive forecast of {horizon} steps")
    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    return Prepared(series, len(raw.filled), raw.fill_report(), transform, z, len(z), len(z), season)


def backtest_origins(p: Prepared, horizon: int, every: int = 1):
    """Origins t (last observed index) whose targets t+1..t+horizon all lie in the backtest part."""
    import torch

    return torch.arange(p.test_start - 1, len(p.z) - horizon, every, dtype=torch.long)


# ---- forecasting and metrics --------------------------------------------------------------------------

def forecast_at(models: dict, p: Prepared, origins, horizon: int, window: int, quantiles, device,
                classical: bool = False) -> dict:
    """Forecasts of every model (and baseline) from each origin, in original units.

    Returns:
        {name: {"point": (N, H) float64 tensor, "lower"/"upper": (N, H) or None}}.
    """
    import torch

    from neuralsight.models.forecaster import classical_forecasts, naive, point_index, seasonal_naive

    y = torch.as_tensor(p.values, dtype=torch.float64)
    out: dict = {"naive": {"point": naive(y, origins, horizon), "lower": None, "upper": None},
                 "seasonal_naive": {"point": seasonal_naive(y, origins, horizon, p.season), "lower": None,
                                    "upper": None}}
    z = p.z.to(device)
    x = z[origins.to(device)[:, None] + torch.arange(-window + 1, 1, device=device)[None, :]]   # (N, W)
    pi = point_index(quantiles)
    for kind, model in models.items():
        with torch.no_grad():
            pred = model(x).float().double().cpu()                                           # (N, H, Q)
        f = p.transform.inverse(pred)                                                         # original units
        entry = {"point": f[..., pi], "lower": None, "upper": None}
        if len(quantiles) >= 2:
            entry["lower"], entry["upper"] = f[..., 0], f[..., -1]
        out[kind] = entry
    if classical:
        for kind in CLASSICAL:
            zf = classical_forecasts(kind, p.z.double().numpy(), p.test_start, origins.numpy(), horizon, p.season)
            out[kind] = {"point": p.transform.inverse(torch.as_tensor(zf)), "lower": None, "upper": None}
    return out


def score(forecasts: dict, p: Prepared, origins, horizon: int) -> dict:
    """MAE, RMSE per horizon and overall; MASE against seasonal naive on the same origins; coverage."""
    import torch

    y = torch.as_tensor(p.values, dtype=torch.float64)
    truth = y[origins[:, None] + torch.arange(1, horizon + 1)[None, :]]        # (N, H)
    ref = (forecasts["seasonal_naive"]["point"] - truth).abs()
    ref_h, ref_all = ref.mean(0), ref.mean()
    scores = {}
    for name, f in forecasts.items():
        err = f["point"] - truth
        mae_h, rmse_h = err.abs().mean(0), err.pow(2).mean(0).sqrt()
        s = {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt()),
             "mase": float(err.abs().mean() / ref_all.clamp_min(1e-12)),
             "mae_h": mae_h.tolist(), "rmse_h": rmse_h.tolist(),
             "mase_h": (mae_h / ref_h.clamp_min(1e-12)).tolist()}
        if f.get("lower") is not None:
            s["coverage"] = float(((truth >= f["lower"]) & (truth <= f["upper"])).double().mean())
        scores[name] = s
    return scores


def flat_metrics(scores: dict, horizon: int) -> dict:
    out = {}
    for name, s in scores.items():
        out.update({f"{name}.mase": s["mase"], f"{name}.mae": s["mae"], f"{name}.rmse": s["rmse"]})
        out.update({f"{name}.mase_h{h}": s["mase_h"][h - 1] for h in REPORT_HORIZONS if h <= horizon})
        if "coverage" in s:
            out[f"{name}.coverage"] = s["coverage"]
    return out


def headline(scores: dict, horizon: int) -> tuple[str, float]:
    h = min(7, horizon)
    nets = [k for k in scores if k in RECURRENT] or [k for k in scores if k in NEURAL]
    best = min(nets, key=lambda k: scores[k]["mase_h"][h - 1])
    return f"{h}-step MASE, best net ({best})", scores[best]["mase_h"][h - 1]




def forecast_csv(forecasts: dict, dates: list, quantiles) -> str:
    """One forecast as CSV text: ``date,step``, then per model its point forecast (and, with quantiles, the
    outer quantiles as ``<name>_q0.1``, ``<name>_q0.9``), one row per step, 4 decimals.

    Args:
        forecasts: ``{name: {"point": (H,), "lower": (H,) or None, "upper": ...}}``. dates: the H dates.
    """
    header = ["date", "step"]
    for name, e in forecasts.items():
        header += [name] + ([f"{name}_q{quantiles[0]:g}", f"{name}_q{quantiles[-1]:g}"] if e["lower"] is not None
                            else [])
    lines = [",".join(header)]
    for h, day in enumerate(dates):
        cells = [day.isoformat(), str(h + 1)]
        for e in forecasts.values():
            cells += [f"{float(e[k][h]):.4f}" for k in ("point", "lower", "upper") if e[k] is not None]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"

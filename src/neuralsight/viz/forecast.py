"""Forecast figures: backtest forecasts with intervals, error by horizon, the split with its origins, the future.

Every function takes plain values (dates, numpy arrays in original units, model names) and writes one PNG.
A forecast is a dict ``{"point": array, "lower": array or None, "upper": array or None}``; solid lines are
neural nets (``neural`` names), dashed lines baselines and classical peers.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save

COLORS = {"lstm": "tab:blue", "gru": "tab:green", "rnn": "tab:orange", "mlp": "tab:red", "naive": "grey",
          "seasonal_naive": "black", "ets": "tab:purple", "arima": "tab:brown"}


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``n <= k``)."""
    if n <= k:
        return list(range(n))
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def forecasts_figure(path: Path, dates: list, values, test_start: int, origins: list[int], model: str,
                     backtest: dict, baseline, future_dates: list, future: dict, interval: str,
                     series_name: str) -> Path:
    """The backtest part with ``model``'s forecasts from four origins, and its forecast after the last date.

    Args:
        dates, values: the whole series, (T,). test_start: index of the first backtest step.
        origins: (N,) last observed index of each backtest forecast.
        backtest: ``model``'s forecasts from every origin, arrays (N, H). baseline: seasonal naive, (N, H).
        future_dates: (H,) dates after the series. future: ``model``'s forecast from the end, arrays (H,).
        interval: legend label of the shaded interval, e.g. ``"0.1-0.9"``.
    """
    horizon = len(future_dates)
    colour = COLORS.get(model)
    fig, ax = plt().subplots(figsize=(10, 4))
    lo = max(0, test_start - 3 * horizon)
    ax.plot(dates[lo:], values[lo:], color="black", lw=1.2, label="actual")
    for j, k in enumerate(sorted(set(spread(len(origins), 4)))):
        o = int(origins[k])
        days = dates[o + 1: o + 1 + horizon]
        ax.plot(days, backtest["point"][k], color=colour, lw=1.6, label=model if j == 0 else None)
        if backtest["lower"] is not None:
            ax.fill_between(days, backtest["lower"][k], backtest["upper"][k], color=colour, alpha=0.2,
                            label=f"{interval} interval" if j == 0 else None)
        ax.plot(days, baseline[k], color="black", ls="--", lw=0.9, label="seasonal naive" if j == 0 else None)
    ax.plot(future_dates, future["point"], color=colour, lw=2.2, ls=":", label=f"{model}: future")
    if future["lower"] is not None:
        ax.fill_between(future_dates, future["lower"], future["upper"], color=colour, alpha=0.12)
    ax.axvline(dates[test_start], color="tab:red", lw=0.8, ls=":")
    ax.set_title(f"{series_name}: backtest forecasts of {model} (best validation MAE) from a few origins, "
                 "and from the end")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return save(fig, path)


def error_by_horizon_figure(path: Path, scores: dict, neural: tuple, n_origins: int) -> Path:
    """MAE and MASE against the horizon for every model; ``scores[name]`` holds ``mae_h`` and ``mase_h`` (H,)."""
    fig, axes = plt().subplots(1, 2, figsize=(11, 3.8))
    for name, sc in scores.items():
        hs = list(range(1, len(sc["mae_h"]) + 1))
        style = {"color": COLORS.get(name), "ls": "-" if name in neural else "--", "marker": "o", "ms": 3}
        axes[0].plot(hs, sc["mae_h"], label=name, **style)
        axes[1].plot(hs, sc["mase_h"], label=name, **style)
    axes[0].set_ylabel("MAE (original units)")
    axes[1].set_ylabel("MASE (seasonal naive = 1)")
    axes[1].axhline(1.0, color="black", lw=0.8)
    for ax in axes:
        ax.set_xlabel("horizon (steps ahead)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"backtest error by horizon ({n_origins} origins)")
    return save(fig, path)


def backtest_origins_figure(path: Path, dates: list, values, val_start: int, test_start: int,
                            origins: list[int], title: str) -> Path:
    """The whole series with its train / validation / backtest parts and a tick at every forecast origin."""
    fig, ax = plt().subplots(figsize=(10, 3.4))
    ax.plot(dates, values, color="black", lw=0.9)
    ax.axvspan(dates[0], dates[val_start], color="tab:blue", alpha=0.08, label="train (scaler fitted here)")
    ax.axvspan(dates[val_start], dates[test_start], color="tab:orange", alpha=0.12, label="validation")
    ax.axvspan(dates[test_start], dates[-1], color="tab:red", alpha=0.08, label="backtest")
    ax.plot([dates[i] for i in origins], [float(min(values))] * len(origins), "|", color="tab:red", ms=8,
            label=f"{len(origins)} forecast origins")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return save(fig, path)


def future_figure(path: Path, dates: list, values, series_name: str, future_dates: list, forecasts: dict,
                  primary: str, neural: tuple, history: int = 120) -> Path:
    """The last ``history`` steps and every model's forecast after them; ``primary``'s interval shaded.

    Args:
        forecasts: ``{name: {"point": (H,), "lower": (H,) or None, "upper": ...}}``, H = ``len(future_dates)``.
    """
    fig, ax = plt().subplots(figsize=(9, 3.8))
    lo = max(0, len(values) - history)
    ax.plot(dates[lo:], values[lo:], color="black", lw=1.2, label=f"{series_name} (history)")
    for name, e in forecasts.items():
        ax.plot(future_dates, e["point"], color=COLORS.get(name), lw=2 if name == primary else 1,
                ls="-" if name in neural else "--", label=name)
    e = forecasts.get(primary)
    if e and e["lower"] is not None:
        ax.fill_between(future_dates, e["lower"], e["upper"], color=COLORS.get(primary), alpha=0.2,
                        label=f"{primary} interval")
    ax.set_title(f"forecast of {len(future_dates)} steps after {dates[-1]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return save(fig, path)

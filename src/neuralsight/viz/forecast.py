"""Forecast figures (test-window forecasts with intervals, error by horizon, the windows with their origins, the
future) and the forecast report's sections, laid out from the run's ``forecast.json``.

Every figure function takes plain values (dates, numpy arrays in original units, model names) and writes one
PNG. A forecast is a dict ``{"point": array, "lower": array or None, "upper": array or None}``; solid lines are
neural nets (``neural`` names), dashed lines baselines and classical peers.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.report.sections import Figure, Section, Table, Text
from neuralsight.viz.figures import plt, save

REPORT_HORIZONS = (1, 7, 14)

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
    ax.set_title(f"{series_name}: test-window forecasts of {model} (chosen on validation) from a few origins, "
                 "and from the end", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return save(fig, path)


def error_by_horizon_figure(path: Path, scores: dict, neural: tuple, n_origins: int, season: int) -> Path:
    """MAE and MASE against the horizon for every model; ``scores[name]`` holds ``mae_h`` and ``mase_h`` (H,);
    ``season`` is the period m of MASE's in-sample seasonal naive scale."""
    fig, axes = plt().subplots(1, 2, figsize=(11, 3.8))
    for name, sc in scores.items():
        hs = list(range(1, len(sc["mae_h"]) + 1))
        style = {"color": COLORS.get(name), "ls": "-" if name in neural else "--", "marker": "o", "ms": 3}
        axes[0].plot(hs, sc["mae_h"], label=name, **style)
        axes[1].plot(hs, sc["mase_h"], label=name, **style)
    axes[0].set_ylabel("MAE (original units)")
    axes[1].set_ylabel(f"MASE (seasonal naive scale, m={season})")
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
    ax.axvspan(dates[test_start], dates[-1], color="tab:red", alpha=0.08, label="test (backtest)")
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


def backtest_figures(fig_dir: Path, split, origins: list[int], shown: str, backtest: dict, future: dict, baseline,
                     scores: dict, quantiles, neural: tuple) -> None:
    """A run's three figures: ``forecasts.png``, ``error_by_horizon.png``, ``backtest_origins.png``.

    Args:
        split: the run's ``data.series.SplitSeries`` (dates, values, window starts, season, fill report).
        origins: the test window's forecast origins. shown: the model drawn; backtest: its forecasts from them,
            arrays (N, H); future: its forecast after the last date, arrays (H,); baseline: seasonal naive (N, H).
        scores: ``{model: {"mae_h", "mase_h"}}`` over the test window.
    """
    s = split.series
    future_dates = [s.date_after(h + 1) for h in range(len(future["point"]))]
    interval = f"{quantiles[0]:g}-{quantiles[-1]:g}" if len(quantiles) >= 2 else ""
    forecasts_figure(fig_dir / "forecasts.png", s.dates, s.values, split.test_start, origins, shown, backtest,
                     baseline, future_dates, future, interval, s.name)
    error_by_horizon_figure(fig_dir / "error_by_horizon.png", scores, neural, len(origins), split.season)
    backtest_origins_figure(fig_dir / "backtest_origins.png", s.dates, s.values, split.val_start, split.test_start,
                            origins, f"{s.name}: {len(s)} steps, {s.dates[0]}..{s.dates[-1]}; {split.fill_report}")


# ----------------------------------------------------------------------------- the report


def _score_rows(info: dict) -> list[dict]:
    scores, pr, val = info["scores"], info.get("protocol"), info.get("val_scores", {})
    h = min(7, len(next(iter(scores.values()))["mae_h"]))
    nominal = (pr or {}).get("interval_nominal")
    rows = []
    for name, sc in sorted(scores.items(), key=lambda kv: kv[1]["mase_h"][h - 1]):
        row = {"model": name, **{f"MASE h={i}": v for i, v in enumerate(sc["mase_h"], 1) if i in REPORT_HORIZONS},
               "MASE": sc["mase"], "MAE": sc["mae"], "RMSE": sc["rmse"]}
        if pr:
            row.update({f"rel. MAE h={h} (vs seasonal naive)": sc["relative_mae_h"][h - 1],
                        f"val MASE h={h}": val[name]["mase_h"][h - 1] if name in val else ""})
        calibrated = ", conformal on val" if (pr or {}).get("interval_calibration") else ""
        row[f"coverage (nominal {nominal:.2f}{calibrated})" if nominal else "interval coverage"] = sc.get("coverage", "")
        row["train s"] = round(info["train_seconds"][name], 1) if name in info["train_seconds"] else ""
        rows.append(row)
    return rows


def _intro(info: dict) -> str:
    s, pr = info["series"], info.get("protocol")
    if not pr:
        return (f"Series {s['name']} ({s['source']}), test window from {s['test_start']}. Written by neuralsight "
                "0.1: the 'MASE' below is MAE over seasonal naive's MAE on the test window itself, not Hyndman and "
                "Koehler's; `neuralsight eval RUN` scores the run with the true MASE.")
    b, w, o, cl = pr["best"], pr["windows"], pr["origins"], pr["classical"]
    peers = "; ".join(f"{k} {v['model']} (lowest AIC of {len(v['candidates'])} candidates)" for k, v in cl.items()
                      if k != "skipped") or cl.get("skipped") or "not fitted (model.classical=false)"
    return (f"Target series: {pr['target_series']} ({s['source']}; {s['fill_report']}). Windows: train "
            f"{w['train'][0]}..{w['train'][1]}, validation {w['val'][0]}..{w['val'][1]} ({o['val']} forecast "
            f"origins), test {w['test'][0]}..{w['test'][1]} ({o['test']} origins). MASE: {pr['mase']}; below 1 beats "
            "that in-sample error. Relative MAE: MAE over seasonal naive's on the same origins (at 7 steps seasonal "
            f"naive is the last value). Best: {b['model']}, the {b['family']} with the lowest validation "
            f"{b['criterion']}, chosen before the test window was forecast; the figures show it. Classical peers, "
            f"fitted on the training window and filtered forward to each origin without refitting, as the nets "
            f"are: {peers}.")


def report_sections(run_dir: Path, info_file: str = "forecast.json") -> list[Section]:
    """The forecast report of a run directory: every model's scores with the protocol in words, the figures, and
    the position experiment (when the run has ``position.json``)."""
    import json

    fig_dir, info_path, position_path = run_dir / "figures", run_dir / info_file, run_dir / "position.json"
    if not info_path.is_file():
        return [Section("Forecast", [Text(f"no {info_file}: training did not finish", muted=True)], "forecast")]
    info = json.loads(info_path.read_text())
    position = json.loads(position_path.read_text()) if position_path.is_file() else None
    out = [Section("Forecast backtest", [
        Text(_intro(info)),
        Table(_score_rows(info), title="Backtest scores (test window; val: validation window)", sortable=True),
        Figure(fig_dir / "forecasts.png", "test-window forecasts with prediction intervals, and the forecast from "
                                          "the end of the series"),
        Figure(fig_dir / "error_by_horizon.png", "MAE and MASE by horizon for every model"),
        Figure(fig_dir / "backtest_origins.png", "the three windows and the test window's forecast origins")],
        "forecast")]
    if position is not None:
        text = (f"The same short pattern (against a reversed distractor) placed only at the first "
                f"{position['train_positions']} positions during training, tested at every position of a "
                f"{position['spec']['length']}-step sequence. The feed-forward net has separate weights for each "
                "position and fails where it never saw the pattern; the 1D CNN and the LSTM share one detector "
                "across positions and carry it over.")
        out.append(Section("Why position matters", [
            Text(text), Table([{"model": k, "accuracy at trained positions": position["seen"][k],
                                "accuracy at unseen positions": position["unseen"][k]} for k in position["accuracy"]]),
            Figure(fig_dir / "position.png", "accuracy by pattern position (shaded: positions seen in training)")],
            "position"))
    return out

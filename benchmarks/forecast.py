"""Forecast benchmark: the covid-hu rolling-origin backtest, every net beside naive, seasonal naive, ETS, ARIMA.

Scores with engine/forecast_metrics.py: true MASE (Hyndman and Koehler 2006: each origin's errors scaled by
the in-sample MAE of the seasonal-naive forecast, period m = the task's season, on the series known at
that origin), MAE, relative MAE against seasonal naive, and the interval coverage next to its nominal
level, at horizons 1, 7 and 14; training seconds per net and seed; the median over seeds. The nets train
through the task (``tasks.forecast.train_models``), the classical peers come from
``tasks.forecast.forecast_at(classical=True)`` (deterministic: fitted once, the same for every seed).

    python benchmarks/forecast.py --hardware cpu --seeds 3            # -> runs/benchmarks/
    python benchmarks/forecast.py --hardware cpu --seeds 3 --write    # -> benchmarks/results/

ETS and ARIMA need statsmodels (``pip install statsmodels``); without them the ratio target is not
measured.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HORIZONS = (1, 7, 14)
COMPARES = ("our recurrent nets (LSTM by default) against naive, seasonal naive, ETS and ARIMA on the same "
            "rolling-origin backtest, same seeds; true MASE (in-sample seasonal-naive scale), MAE relative to "
            "seasonal naive, interval coverage against its nominal level")


def scores(forecast: dict, prep, origins, horizon: int, quantiles) -> dict:
    """True MASE, MAE per horizon, relative MAE against seasonal naive, coverage of one model's forecasts."""
    import numpy as np

    from neuralsight.engine import forecast_metrics as fm

    y = np.asarray(prep.values, dtype=np.float64)
    o = np.asarray(origins, dtype=np.int64)
    truth = y[o[:, None] + np.arange(1, horizon + 1)[None, :]]                       # (N, H)
    point = np.asarray(forecast["point"], dtype=np.float64)
    mase = fm.rolling_origin_mase(y, o.tolist(), point, prep.season)
    out = {"mase": mase["mase"], "mase_period": mase["period"]}
    for h in HORIZONS:
        if h <= horizon:
            out[f"mase_h{h}"] = mase["mase_h"][h - 1]
            out[f"mae_h{h}"] = fm.mae(truth[:, h - 1], point[:, h - 1])
    if forecast.get("lower") is not None:
        nominal = float(quantiles[-1]) - float(quantiles[0])
        cov = fm.interval_coverage(truth, forecast["lower"], forecast["upper"], nominal)
        out.update(interval_coverage=cov["coverage"], interval_nominal=cov["nominal"])
    return out


def main() -> None:
    p = common.parser(__doc__, COMPARES)
    p.add_argument("--preset", default="covid")
    p.add_argument("--model", default="lstm", help="the net the targets are about (one of the preset's models)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default: the preset's)")
    p.add_argument("--models", default=None, help="comma list of lstm,gru,rnn,mlp (default: the preset's)")
    p.add_argument("--no-classical", action="store_true", help="skip ETS and ARIMA")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    args = p.parse_args()

    import numpy as np
    import torch

    from neuralsight import config as C
    from neuralsight.engine import runs as run_dirs
    from neuralsight.engine.device import resolve_device
    from neuralsight.engine.forecast_metrics import relative_mae
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks import forecast as F

    bench = common.Benchmark("forecast", args, resolve_device(args.device))
    runs: list[dict] = []
    baselines: dict[str, dict] = {}
    cfg = None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            sets = [f"train.seed={seed}", "train.progress=false", "position.enabled=false",
                    f"train.device=\"{args.device}\"", *args.overrides]
            if args.steps:
                sets.append(f"train.steps={args.steps}")
            if args.models:
                sets.append("model.models=[" + ",".join(f'"{m}"' for m in args.models.split(",")) + "]")
            cfg = C.build(F.Config, preset=args.preset, overrides=sets)
            env = setup(cfg.train)
            series, raw = F.load_series(cfg.data)
            prep = F.prepare_series(series, cfg, raw)
            run = run_dirs.create("forecast", f"bench-{seed}", root=Path(tmp))
            trained = F.train_models(cfg, env, run, prep)
            run.close()
            m = cfg.model
            origins = F.backtest_origins(prep, m.horizon, cfg.data.origin_every)
            fc = F.forecast_at({k: model for k, (model, _) in trained.items()}, prep, origins, m.horizon,
                               m.input_window, m.quantiles, env.device)
            if not baselines:
                found = {k: fc[k] for k in F.BASELINES}
                if not args.no_classical:
                    try:
                        cl = F.forecast_at({}, prep, origins, m.horizon, m.input_window, m.quantiles, env.device,
                                           classical=True)
                        found.update({k: cl[k] for k in F.CLASSICAL})
                    except Exception as err:  # statsmodels missing: record why and go on
                        print(f"classical peers skipped: {err}", flush=True)
                baselines = {k: scores(f, prep, origins, m.horizon, m.quantiles) for k, f in found.items()}
            y = np.asarray(prep.values, dtype=np.float64)
            o = origins.numpy()
            h7 = min(7, m.horizon)
            truth7 = y[o + h7]
            for kind, (_, result) in trained.items():
                s = scores(fc[kind], prep, origins, m.horizon, m.quantiles)
                s["relative_mae_h7_vs_seasonal_naive"] = relative_mae(
                    truth7, fc[kind]["point"][:, h7 - 1], fc["seasonal_naive"]["point"][:, h7 - 1])
                runs.append(common.check_run({
                    "id": common.run_id(kind, seed), "name": kind, "kind": "ours", "seed": seed,
                    "stopped_by": result.stopped_by, "steps": result.step, "train_seconds": result.train_seconds,
                    "wall_seconds": result.wall_seconds, "items_per_second": result.items_per_second,
                    "metric": f"mase_h{h7}", "value": s[f"mase_h{h7}"], **s}))
                print(f"seed {seed} {kind}: MASE h{h7} {s[f'mase_h{h7}']:.3f}, {result.train_seconds:.1f} s", flush=True)

    ours = [r for r in runs if r["name"] == args.model]
    if not ours:
        raise common.BenchmarkError(f"--model {args.model} was not trained; the preset trains "
                                    f"{sorted({r['name'] for r in runs})}")
    h7 = min(7, cfg.model.horizon)
    targets = []
    classical = [baselines[k][f"mase_h{h7}"] for k in F.CLASSICAL if k in baselines]
    ours_mase = common.median([r[f"mase_h{h7}"] for r in ours])
    targets.append(common.target(f"{args.model}_mase_h{h7}_ratio_vs_best_classical", "<= 0.95",
                                 ours_mase / min(classical) if classical else None,
                                 ours=[r["id"] for r in ours], peers=[k for k in F.CLASSICAL if k in baselines]))
    targets.append(common.target_from_runs(f"{args.model}_relative_mae_h{h7}_vs_seasonal_naive", "<= 0.85", ours,
                                           key="relative_mae_h7_vs_seasonal_naive"))
    if "interval_coverage" in ours[0]:
        nominal = ours[0]["interval_nominal"]
        targets.append(common.target_from_runs(f"interval_coverage_{round(nominal * 100)}", ">= 0.72", ours,
                                               key="interval_coverage", nominal=nominal))
    path = bench.write(targets, runs, baselines=baselines, seeds=args.seeds, config=C.to_dict(cfg),
                       torch=torch.__version__,
                       mase_definition=(f"Hyndman & Koehler (2006): MAE over the in-sample MAE of the seasonal "
                                        f"naive forecast with period {ours[0]['mase_period']}, each origin scaled "
                                        "by the series up to that origin"),
                       backtest=f"{cfg.data.backtest_days} steps before {cfg.data.end or 'the end'}")
    for t in targets:
        print(f"{t['name']}: {t['measured']} (target {t['target']}) {'MET' if t['met'] else 'not met'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    common.main(main)

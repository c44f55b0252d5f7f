"""Forecast benchmark: `neuralsight train forecast` (the covid preset) against ETS, ARIMA and seasonal naive.

Ours is what a user gets: ``neuralsight train forecast --preset covid --seed N`` through the CLI (every net of
the preset trains; the targets are about ``--model``, the LSTM by default). The peers are fitted in the same
run, on the same series, windows and seed: ETS and ARIMA with their structure chosen by AIC on the training
window (statsmodels, ``models/forecaster.py``), parameters fixed there and filtered forward to each origin
without refitting, as the nets read their input window without retraining. The classical peer compared
against is the one with the lower validation MASE (chosen before the test window, as the task chooses its
best net). The fits do not depend on the seed; they are refitted in every seed's run all the same.

Scores come from the run's ``summary.json`` (the test window, ``engine/forecast_metrics.py``): MASE as Hyndman
and Koehler (2006) define it (each origin's errors over the in-sample MAE of the seasonal naive forecast, period
m = 7, on the series up to that origin), MAE relative to seasonal naive, interval coverage beside its nominal
level; the median over seeds. Peers are not trained on a budget (the AIC search runs to the end), so the ratio
is not an equal-time comparison: the file records the seconds of both. The targets assume the preset's own
training length; ``--budget S`` (``--max-time``, for smoke runs) records them as not comparable.

    python benchmarks/forecast.py --hardware cpu --seeds 3            # -> runs/benchmarks/
    python benchmarks/forecast.py --hardware cpu --seeds 3 --write    # -> benchmarks/results/

Needs statsmodels (``pip install statsmodels``, the bench extra); without it the run has no peers and the
benchmark stops with that hint.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CLASSICAL = ("ets", "arima")
COMPARES = ("`neuralsight train forecast` (covid preset, the LSTM) against ETS and ARIMA fitted by AIC on the "
            "training window and seasonal naive, same run, series, windows and seeds; true MASE 7 days ahead "
            "(in-sample seasonal-naive scale, m = 7), MAE relative to seasonal naive, 80 % interval coverage")
SCORES = ("mase", "mase_h1", "mase_h7", "mase_h14", "mae", "rmse", "relative_mae", "relative_mae_h7", "coverage",
          "coverage_nominal")


def _scores(metrics: dict, name: str) -> dict:
    return {k: metrics[f"{name}.{k}"] for k in SCORES if f"{name}.{k}" in metrics}


def runs_of_seed(record: dict, model: str) -> tuple[dict, list[dict], dict]:
    """Our run record for ``model``, the peers' records, and the run's forecast protocol, from one run."""
    summary = json.loads((Path(record["run_dir"]) / "summary.json").read_text())
    test, val, protocol = summary["metrics"]["test"], summary["metrics"]["val"], summary["forecast"]
    fits = summary.get("fits") or {summary["models"][0]: summary["fit"]}
    if model not in fits:
        raise common.BenchmarkError(f"--model {model} was not trained; the run trained {sorted(fits)}")
    fit, seed = fits[model], record["seed"]
    ours = common.check_run({
        "id": common.run_id(model, seed), "name": model, "kind": "ours", "seed": seed, "command": record["command"],
        "stopped_by": fit["stopped_by"], "steps": fit["step"], "train_seconds": fit["train_seconds"],
        "wall_seconds": fit["wall_seconds"], "items_per_second": fit["items_per_second"], "metric": "mase_h7",
        "value": test[f"{model}.mase_h7"], **_scores(test, model), "val_mase_h7": val[f"{model}.mase_h7"],
        "best": protocol["best"]})
    if "skipped" in protocol["classical"]:
        raise common.BenchmarkError(f"the run fitted no classical peers ({protocol['classical']['skipped']})")
    peers = []
    for kind in CLASSICAL:
        peer = protocol["classical"][kind]
        peers.append(common.check_run({
            "id": common.run_id(kind, seed), "name": kind, "kind": "peer", "seed": seed, "model": peer["model"],
            "aic": peer["aic"], "selected_by": "aic", "candidates": len(peer["candidates"]),
            # every candidate of the AIC search fitted to convergence: the search's own end, not a budget
            "stopped_by": "steps", "steps": len(peer["candidates"]), "train_seconds": peer["fit_seconds"],
            "wall_seconds": peer["fit_seconds"], "metric": "mase_h7", "value": test[f"{kind}.mase_h7"],
            **_scores(test, kind), "val_mase_h7": val[f"{kind}.mase_h7"]}))
    baselines = {name: _scores(test, name) for name in ("naive", "seasonal_naive")}
    return ours, peers, {**protocol, "baselines": baselines}


def main() -> None:
    p = common.parser(__doc__, COMPARES)
    p.add_argument("--preset", default="covid")
    p.add_argument("--model", default="lstm", help="the net the targets are about (one of the preset's models)")
    p.add_argument("--budget", type=float, default=None,
                   help="--max-time of our run in seconds (default: the preset's own epochs, which the targets "
                        "assume; any other budget records them as not comparable)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="config override key=value for our run (recorded in the file)")
    args = p.parse_args()

    import torch

    from neuralsight.engine.device import resolve_device

    bench = common.Benchmark("forecast", args, resolve_device(args.device))
    # The position experiment is the lecture's aside in the same run; it does not touch the forecasts.
    overrides = ["position.enabled=false", *args.overrides]
    runs, protocols = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            record = common.run_ours("forecast", seed, args.budget, preset=args.preset, name=args.model,
                                     overrides=overrides, device=None if args.device == "auto" else args.device,
                                     runs_root=Path(tmp) / f"seed{seed}")
            ours, peers, protocol = runs_of_seed(record, args.model)
            runs += [ours, *peers]
            protocols.append(protocol)
            print(f"seed {seed}: {args.model} MASE h7 {ours['mase_h7']:.3f} ({ours['train_seconds']:.1f} s); " +
                  "; ".join(f"{r['name']} {r['model']} {r['mase_h7']:.3f} ({r['train_seconds']:.1f} s)" for r in peers),
                  flush=True)
    ours = [r for r in runs if r["kind"] == "ours"]
    # the peer each seed's run chose on its validation window
    best = [next(r for r in runs if r["kind"] == "peer" and r["seed"] == o["seed"]
                 and r["name"] == pr["best_classical"]["model"]) for o, pr in zip(ours, protocols, strict=True)]
    nominal = ours[0]["coverage_nominal"]
    targets = [common.at_budget(t, None, args.budget, what="--max-time") for t in [
        common.ratio_target(f"{args.model}_mase_h7_ratio_vs_best_classical", "<= 0.95", ours, best, key="mase_h7",
                            equal_time=False, best_classical=sorted({r["name"] for r in best}),
                            chosen_on="validation MASE h7",
                            time="not equal time: the peers' AIC search is not budgeted (seconds in the runs)"),
        common.target_from_runs(f"{args.model}_relative_mae_h7_vs_seasonal_naive", "<= 0.85", ours,
                                key="relative_mae_h7"),
        common.target_from_runs(f"interval_coverage_{round(nominal * 100)}", ">= 0.72", ours, key="coverage",
                                nominal=nominal)]]
    first = protocols[0]
    path = bench.write(targets, runs, seeds=args.seeds, preset=args.preset, budget_seconds=args.budget,
                       nominal_budget_seconds=None, overrides=overrides,
                       torch=torch.__version__, target_series=first["target_series"], mase_definition=first["mase"],
                       season=first["season"], windows=first["windows"], origins=first["origins"],
                       interval_nominal=first["interval_nominal"], baselines=first["baselines"],
                       protocol=("nets and peers fitted once on the training window, never refitted; each reads "
                                 "the series up to every origin of the test window and forecasts 14 steps"))
    for t in targets:
        print(f"{t['name']}: {t['measured']} (target {t['target']}) {'MET' if t['met'] else 'not met'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    common.main(main)

"""Character-level language modelling on tiny shakespeare (nanoGPT's corpus and 90/10 split), plus Romeo and Juliet.

Measures, per seed, the best validation loss (nats/char over the WHOLE validation split, state carried
across chunks; nanoGPT's protocol: the last 10 % both selects and reports), the wall time at which it was
reached, tokens/s and parameters; the headline is the median over seeds. Every run is
``neuralsight train textgen --preset tinyshakespeare --max-time BUDGET --steps N --seed S`` (the steps
planned from a short calibration run so the cosine schedule ends at the budget). In the same run: RNN vs
LSTM vs GRU at an equal time budget (the lecture's point about memory length), and Romeo and Juliet's
validation bits/char with a sample.

Targets (a benchmark, never a test): this 2-core CPU val loss <= 1.50 within 180 s (issue 13); one
H100-class GPU <= 1.42 within 120 s. Anchors: nanoGPT's CPU config 1.886 after 2000 iterations (56 s
here); nanoGPT's baby GPT 1.4697 (A100, ~3 min).

    python benchmarks/textgen.py --hardware auto --device cpu --seeds 3           # -> runs/benchmarks/
    python benchmarks/textgen.py --hardware auto --device cpu --seeds 3 --write   # -> benchmarks/results/
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

COMPARES = ("our char-LSTM (`train textgen --preset tinyshakespeare`) against the time budget target, and RNN vs "
            "LSTM vs GRU cells at equal time; best validation loss in nats/char (and bits/char)")

# Model/optimizer per hardware class. CPU: one 512-unit LSTM layer is what 2 cores can push far enough in
# 180 s; GPU: a wider, deeper LSTM with longer windows (cuDNN keeps it fast).
PROFILES = {
    "cpu": {"budget": 180.0, "compare_budget": 60.0, "romeo_budget": 60.0, "eval_every_s": 20.0,
            "sets": ["model.cell=\"lstm\"", "model.hidden_size=512", "model.num_layers=1", "model.embedding=64",
                     "model.dropout=0.0", "data.seq_len=128", "train.batch_size=64", "train.lr=0.004",
                     "train.warmup=50"]},
    "gpu": {"budget": 120.0, "compare_budget": 60.0, "romeo_budget": 60.0, "eval_every_s": 10.0,
            "sets": ["model.cell=\"lstm\"", "model.hidden_size=1024", "model.num_layers=3", "model.embedding=128",
                     "model.dropout=0.25", "data.seq_len=256", "train.batch_size=128", "train.lr=0.002",
                     "train.warmup=100", "data.eval_streams=256"]},
}
RULES = {"cpu": "<= 1.50", "gpu": "<= 1.42"}   # issue 13: 180 s on this CPU; issue 13's GPU check: 120 s


def _train(preset: str, sets: list[str], args, out: Path, name: str, seed: int, max_time: float | None,
           steps: int) -> dict:
    """``neuralsight train textgen`` through the command line; the run record (run directory kept in ``out``)."""
    extra = ["--steps", str(steps)] + (["--precision", args.precision] if args.precision != "auto" else [])
    return common.run_ours("textgen", seed, max_time or None, preset=preset, name=name, overrides=sets,
                           args=extra, device=args.device, runs_root=out)


def _calibrate(preset: str, sets: list[str], args, out: Path) -> float:
    """Optimizer steps per second of this configuration (a short run; its result is discarded)."""
    record = _train(preset, sets + ["train.eval_every=0", "samples.stages=[]"], args, out, "calibrate", 0, 0.0,
                    args.calibration_steps)
    per_item = record["items_per_second"]
    batch = int(next(s.split("=")[1] for s in sets[::-1] if s.startswith("train.batch_size=")))
    return per_item / batch


def bits_per_char(nats: float) -> float:
    from neuralsight.engine.metrics import bits_per_char as bpc

    return bpc(nats)


def _measured_run(preset: str, sets: list[str], args, out: Path, name: str, seed: int, budget: float,
                  steps_per_s: float, eval_every_s: float) -> dict:
    # Plan the cosine schedule to end at the budget (estimated from the calibration); the wall clock stops it.
    steps = max(20, int(steps_per_s * budget * 0.92))
    eval_every = max(10, int(steps_per_s * eval_every_s))
    record = _train(preset, sets + [f"train.eval_every={eval_every}", "samples.stages=[0]"], args, out, name, seed,
                    budget, steps)
    run = Path(record["run_dir"])
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"kind": "eval"' in line]
    best = min(evals, key=lambda r: r["val_loss"])
    data = json.loads((run / "data.json").read_text())
    stages = json.loads((run / "samples" / "stages.json").read_text())
    record.pop("run_dir")
    record.update(metric="best_val_loss", value=best["val_loss"], best_val_bpc=bits_per_char(best["val_loss"]),
                  best_step=best["step"], seconds_to_best=best["time"], throughput=record["metrics"]["tokens_per_s"],
                  throughput_unit="tokens/s", parameters=data["parameters"],
                  curve=[[r["time"], round(r["val_loss"], 4)] for r in evals],
                  sample=stages[-1]["seed"] + stages[-1]["text"] if stages else "")
    return record


def _precision_probe(sets: list[str], args, out: Path) -> dict:
    """tokens/s of fp32 and bf16 autocast for the benchmark model (the choice is measured, not assumed)."""
    from neuralsight.engine.device import cpu_has_bf16, resolve_device

    device = resolve_device(args.device)
    if device.type == "cpu" and not cpu_has_bf16():
        return {"fp32": None, "bf16": None, "chosen": "fp32", "why": "no native bf16 on this CPU"}
    rates = {}
    saved = args.precision
    for prec in ("fp32", "bf16"):
        args.precision = prec
        rates[prec] = round(_calibrate("tinyshakespeare", sets, args, out) *
                            int(next(s.split("=")[1] for s in sets[::-1] if s.startswith("train.batch_size="))) *
                            int(next(s.split("=")[1] for s in sets[::-1] if s.startswith("data.seq_len="))), 1)
    args.precision = saved
    chosen = "bf16" if rates["bf16"] > 1.05 * rates["fp32"] else "fp32"
    return {**rates, "unit": "tokens/s", "chosen": chosen}


def main(argv=None) -> int:
    ap = common.parser(__doc__, COMPARES)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="auto measures fp32 vs bf16 throughput first and uses the faster")
    ap.add_argument("--budget", type=float, default=None, help="seconds per headline run (default 180 CPU, 120 GPU)")
    ap.add_argument("--compare-budget", type=float, default=None, help="seconds per cell in RNN/LSTM/GRU")
    ap.add_argument("--romeo-budget", type=float, default=None, help="seconds for Romeo and Juliet (0: skip)")
    ap.add_argument("--cells", default="rnn,lstm,gru", help="cells to compare at equal time ('' skips)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--calibration-steps", type=int, default=15)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra config overrides")
    args = ap.parse_args(argv)

    os.environ.setdefault("NEURALSIGHT_DATA", str(ROOT.parent / "shared" / "datasets"))
    from neuralsight.engine.device import resolve_device

    device = resolve_device(args.device)
    bench = common.Benchmark("textgen", args, device, argv)
    args.device = device.type
    kind = "gpu" if device.type == "cuda" else "cpu"
    prof = PROFILES[kind]
    budget = args.budget or prof["budget"]
    compare_budget = args.compare_budget if args.compare_budget is not None else prof["compare_budget"]
    romeo_budget = args.romeo_budget if args.romeo_budget is not None else prof["romeo_budget"]
    sets = prof["sets"] + list(args.sets)
    if args.threads:
        sets.append(f"train.threads={args.threads}")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="textgen-bench-") as tmp:
        work = Path(tmp)
        probe = None
        if args.precision == "auto":
            probe = _precision_probe(sets, args, work)
            args.precision = probe["chosen"]
            print(f"precision probe: {probe}", flush=True)
        rate = _calibrate("tinyshakespeare", sets, args, work)
        print(f"calibration: {rate:.2f} steps/s", flush=True)

        runs = []
        for seed in range(args.seeds):
            r = _measured_run("tinyshakespeare", sets, args, work, "lstm", seed, budget, rate, prof["eval_every_s"])
            runs.append(r)
            print(f"seed {seed}: best val loss {r['value']:.4f} at {r['seconds_to_best']} s, "
                  f"{r['throughput']:.0f} tok/s", flush=True)
        for cell in [c for c in args.cells.split(",") if c]:
            cell_sets = sets + [f"model.cell=\"{cell}\""]
            cell_rate = _calibrate("tinyshakespeare", cell_sets, args, work)
            r = _measured_run("tinyshakespeare", cell_sets, args, work, f"compare-{cell}", 0, compare_budget,
                              cell_rate, prof["eval_every_s"])
            r["cell"] = cell
            runs.append(r)
            print(f"{cell}: best val loss {r['value']:.4f} in {compare_budget} s", flush=True)
        if romeo_budget:
            romeo_sets = [s for s in sets if not s.startswith(("data.eval_streams", "data.seq_len"))]
            romeo_sets += ["model.dropout=0.2"]
            r_rate = _calibrate("romeo", romeo_sets, args, work)
            romeo = _measured_run("romeo", romeo_sets, args, work, "romeo", 0, romeo_budget, r_rate,
                                  prof["eval_every_s"])
            runs.append(romeo)
            print(f"romeo: best val bits/char {romeo['best_val_bpc']:.4f}", flush=True)

    headline = [r for r in runs if r["name"] == "lstm"]
    name = f"tinyshakespeare_val_loss_{budget:g}s" + ("_gpu" if kind == "gpu" else "")
    targets = [common.target_from_runs(name, RULES[kind], headline)]
    path = bench.write(targets, runs, corpus="tinyshakespeare (1,115,394 chars), first 90% train / last 10% "
                       "validation (nanoGPT's split: the validation part both selects and reports)",
                       eval="val loss in nats/char over the whole validation split; contiguous streams, state carried",
                       budget_seconds=budget, precision_probe=probe,
                       anchors={"nanogpt_cpu_config_2000_iters": 1.886, "nanogpt_baby_gpt_a100": 1.4697},
                       total_seconds=round(time.time() - started, 1))
    t = targets[0]
    print(f"wrote {path}: {t['name']} {t['measured']} (target {t['target']}, met={t['met']})")
    return 0


if __name__ == "__main__":
    common.main(main)

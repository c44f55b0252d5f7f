"""What the training engine costs: ``trainer.fit`` against a bare PyTorch loop doing the same work.

Both train the same small CNN on the same synthetic 28x28 batches held on the device (AdamW, gradient
clipping, the same precision); the bare loop has no logging, checkpoints, schedule or progress bar.
Writes ``benchmarks/results/engine_overhead-<hardware>.json``. Run:

    python benchmarks/engine_overhead.py --hardware auto --device cpu --steps 60
    python benchmarks/engine_overhead.py --hardware auto --device cuda --steps 300 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_task(device, n: int, channels_last: bool):
    import torch
    from torch import nn

    class SyntheticCNN:
        monitor, monitor_mode = "val_loss", "min"

        def __init__(self):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 1, 28, 28, generator=g).to(device)      # (N, 1, 28, 28)
            self.y = torch.randint(0, 10, (n,), generator=g).to(device)      # (N,)
            self.channels_last = channels_last
            self.model = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
                nn.Flatten(), nn.Linear(64 * 49, 10)).to(device)
            self.model_spec = {"name": "bench_cnn", "kwargs": {}}

        def train_size(self):
            return n

        def get_batch(self, idx):
            idx = idx.to(device)
            x = self.x[idx]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return x, self.y[idx]

        def training_step(self, model, batch):
            x, y = batch
            return nn.functional.cross_entropy(model(x).float(), y)

        def evaluate(self, model):
            return {"val_loss": float(self.training_step(model, (self.x[:256], self.y[:256])))}

    return SyntheticCNN()


def bare_loop(task, env, cfg, steps: int) -> float:
    import torch

    from neuralsight.engine.trainer import build_optimizer

    model = task.model
    if task.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg)
    n, bs = task.train_size(), cfg.batch_size
    perm = torch.randperm(n)
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    t0 = None
    for i in range(steps + 10):
        if i == 10:  # the first steps warm up allocators and kernels
            sync()
            t0 = time.perf_counter()
        idx = perm[(i * bs) % (n - bs):][:bs]
        with env.autocast():
            loss = task.training_step(model, task.get_batch(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    sync()
    return steps * bs / (time.perf_counter() - t0)


def engine_loop(task, env, cfg, steps: int) -> float:
    import dataclasses

    from neuralsight.engine import runs, trainer

    with tempfile.TemporaryDirectory() as tmp:
        run = runs.create("bench", "overhead", root=Path(tmp))
        c = dataclasses.replace(cfg, steps=steps + 10, eval_every=0, log_every=50, progress=False)
        result = trainer.fit(task, env, c, run, {})
        run.close()
        recs = [r for r in runs.read_metrics(run.path) if r["kind"] == "train"]
    # Throughput of the records after the first (which holds the warm-up steps), as fit reports it.
    later = recs[1:] or recs
    return sum(r["items_per_s"] for r in later) / len(later) if later else result.items_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hardware", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=2, help="repetitions of each loop (best is kept)")
    args = ap.parse_args()

    import torch

    from neuralsight.config import TrainConfig
    from neuralsight.engine.device import describe_hardware, hardware_tag
    from neuralsight.engine.trainer import setup

    cfg = TrainConfig(device=args.device, precision=args.precision, batch_size=args.batch_size, lr=1e-3,
                      progress=False)
    env = setup(cfg)
    hardware = hardware_tag(env.device) if args.hardware == "auto" else args.hardware
    n = args.batch_size * 8
    best = {"bare": 0.0, "engine": 0.0}
    runs_out = []
    for seed in range(args.seeds):
        for name, fn in (("bare", bare_loop), ("engine", engine_loop)):
            torch.manual_seed(seed)
            ips = fn(make_task(env.device, n, env.device.type == "cuda"), env, cfg, args.steps)
            best[name] = max(best[name], ips)
            runs_out.append({"preset": name, "seed": seed, "metric": "items_per_second", "value": round(ips, 1),
                             "train_seconds": round(args.steps * args.batch_size / ips, 3), "throughput": round(ips, 1)})
    ratio = best["engine"] / best["bare"]
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    hw = describe_hardware(env.device)
    out = {"benchmark": "engine_overhead", "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "git": git,
           "hardware": {"device": str(env.device), "cpu": hw["cpu"], "threads": torch.get_num_threads(),
                        "gpu": hw.get("gpu"), "loadavg": list(os.getloadavg()), "python": platform.python_version()},
           "command": "python " + " ".join(sys.argv), "precision": env.precision,
           "targets": [{"name": "engine_throughput_vs_bare_loop", "target": ">= 0.9", "measured": round(ratio, 3),
                        "met": ratio >= 0.9}],
           "runs": runs_out}
    path = ROOT / "benchmarks" / "results" / f"engine_overhead-{hardware}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"]), f"bare {best['bare']:.0f} items/s, engine {best['engine']:.0f} items/s -> {path}")


if __name__ == "__main__":
    main()

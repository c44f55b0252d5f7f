"""What the training engine costs: ``trainer.fit`` against a bare PyTorch loop doing the same work.

Both train the same small CNN on the same synthetic 28x28 batches held on the device (AdamW, gradient
clipping, the same precision); the bare loop has no logging, checkpoints, schedule or progress bar.
Both run a fixed number of steps after 10 warm-up steps (not a time budget: this compares speed, not
quality). Run:

    python benchmarks/engine_overhead.py --hardware auto --device cpu --steps 60           # -> runs/benchmarks/
    python benchmarks/engine_overhead.py --hardware auto --device cpu --steps 60 --write   # -> benchmarks/results/
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

COMPARES = ("the training engine (trainer.fit: logging, checkpoints, schedule) against a bare PyTorch loop doing "
            "the same steps on the same synthetic batches, same seeds; items/s")


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


def bare_loop(task, env, cfg, steps: int) -> dict:
    """The same steps without the engine: 10 warm-up steps, then ``steps`` timed by ``common.timed_loop``."""
    import torch

    from neuralsight.engine.trainer import build_optimizer

    model = task.model
    if task.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg)
    n, bs = task.train_size(), cfg.batch_size
    perm = torch.randperm(n)
    counter = [0]

    def step(fraction):
        idx = perm[(counter[0] * bs) % (n - bs):][:bs]
        counter[0] += 1
        with env.autocast():
            loss = task.training_step(model, task.get_batch(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    sync = torch.cuda.synchronize if env.device.type == "cuda" else None
    common.timed_loop(step, math.inf, max_steps=10, synchronize=sync)   # the first steps warm up allocators
    loop = common.timed_loop(step, math.inf, max_steps=steps, synchronize=sync)
    return {**loop, "items_per_second": steps * bs / loop["train_seconds"]}


def engine_loop(task, env, cfg, steps: int) -> dict:
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
    ips = sum(r["items_per_s"] for r in later) / len(later) if later else result.items_per_second
    return {"stopped_by": result.stopped_by, "steps": result.step, "train_seconds": result.train_seconds,
            "wall_seconds": result.wall_seconds, "items_per_second": ips}


def main() -> None:
    ap = common.parser(__doc__, COMPARES)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.set_defaults(seeds=2)
    args = ap.parse_args()

    import torch

    from neuralsight.config import TrainConfig
    from neuralsight.engine.trainer import setup

    cfg = TrainConfig(device=args.device, precision=args.precision, batch_size=args.batch_size, lr=1e-3,
                      progress=False)
    env = setup(cfg)
    bench = common.Benchmark("engine_overhead", args, env.device)
    n = args.batch_size * 8
    runs = []
    for seed in range(args.seeds):
        for name, fn in (("bare", bare_loop), ("engine", engine_loop)):
            torch.manual_seed(seed)
            r = fn(make_task(env.device, n, env.device.type == "cuda"), env, cfg, args.steps)
            runs.append(common.check_run({"id": common.run_id(name, seed), "name": name,
                                          "kind": "ours" if name == "engine" else "peer", "seed": seed, **r,
                                          "metric": "items_per_second", "value": r["items_per_second"]}))
            print(f"{name} seed {seed}: {r['items_per_second']:.0f} items/s", flush=True)
    engine = [r for r in runs if r["name"] == "engine"]
    bare = [r for r in runs if r["name"] == "bare"]
    targets = [common.ratio_target("engine_throughput_vs_bare_loop", ">= 0.9", engine, bare, key="items_per_second",
                                   equal_time=False)]
    path = bench.write(targets, runs, precision=env.precision, steps=args.steps, batch_size=args.batch_size)
    print(f"{targets[0]['name']}: {targets[0]['measured']:.3f} (target {targets[0]['target']}) -> {path}")


if __name__ == "__main__":
    common.main(main)

"""Benchmark: V-Net on MSD hippocampus against a MONAI peer, same split, patches, loss and time budget.

Fixed 80/20 split by case of the 260 volumes (listed in the result file). Each model trains through the
one training loop (engine.trainer.fit) on the same foreground-biased patches and augmentation with
CE + Dice, for the same training-time budget (``--budget`` seconds; the engine's cosine schedule follows the fraction of the
budget used, so it ends on the deadline). Validation uses sliding-window inference on whole
volumes. Recorded per model and seed: Dice anterior (1) / posterior (2), HD95 (mm), volume difference,
training seconds, volumes/s; the median over seeds is compared with the targets and with the peer.

    python benchmarks/segment3d.py --hardware auto --device cpu --seeds 3 --budget 300           # -> runs/benchmarks/
    python benchmarks/segment3d.py --hardware auto --device cpu --seeds 3 --budget 300 --write   # -> benchmarks/results/

Anchors (MSD test set, not this split): nnU-Net 0.90 / 0.89, MONAI DynUNet 0.90 / 0.88.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

COMPARES = ("our V-Net against MONAI's UNet (or VNet) through the same engine loop, patches, loss and training "
            "seconds, same seeds; hippocampus Dice anterior/posterior, HD95 and patches/s")
TARGETS = {"anterior": 0.88, "posterior": 0.87}
ANCHORS = {"nnU-Net (MSD test)": {"anterior": 0.90, "posterior": 0.89},
           "MONAI DynUNet (MSD test)": {"anterior": 0.90, "posterior": 0.88}}


class PadToMultiple:
    """Wrap a network that needs sizes divisible by ``multiple``: pad, run, crop (what our V-Net does inside)."""

    def __new__(cls, net, multiple: int):
        import torch

        from neuralsight.data.volumes import crop_to, pad_to_multiple

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                padded, size = pad_to_multiple(x, multiple)
                return crop_to(self.net(padded), size)

        return Wrapped()


def peer_model(name: str, num_classes: int):
    """MONAI's UNet (residual units, the tutorial configuration) or VNet, padded to their size multiple."""
    from monai.networks.nets import UNet, VNet

    if name == "monai-unet":
        return PadToMultiple(UNet(spatial_dims=3, in_channels=1, out_channels=num_classes,
                                  channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2,
                                  norm="batch"), 8)
    if name == "monai-vnet":
        return PadToMultiple(VNet(spatial_dims=3, in_channels=1, out_channels=num_classes, dropout_prob=0.0,
                                  dropout_prob_down=0.0, dropout_prob_up=(0.0, 0.0)), 16)
    raise SystemExit(f"unknown peer {name!r}: monai-unet or monai-vnet")


def run_one(label: str, cfg, env, train_cases, val_cases, names, budget: float, peer: str | None):
    from neuralsight.engine.runs import create
    from neuralsight.engine.trainer import fit, seed_everything
    from neuralsight.tasks import segment3d as S

    seed_everything(cfg.train.seed)
    task = S.Segment3DTask(cfg, env, train_cases, val_cases, names)
    if peer:
        task.model = peer_model(peer, len(names)).to(env.device)
        task.model_spec = {"name": peer, "kwargs": {}}
    task.eval_cases = val_cases[:4]
    n_params = sum(p.numel() for p in task.model.parameters())

    # Equal time: the wall-clock budget is the horizon; the engine's cosine follows the fraction of the
    # budget used, so it ends on the deadline whatever the machine's load (a step count calibrated from a
    # few timed steps missed by 2-3x on this shared CPU). Evaluation only at the end.
    cfg.train.steps = 0
    cfg.train.epochs = 0
    cfg.train.max_time = budget
    cfg.train.eval_every = 10**9
    cfg.train.progress = False
    seed_everything(cfg.train.seed)
    with tempfile.TemporaryDirectory() as tmp:
        run = create("segment3d", label, root=Path(tmp))
        result = fit(task, env, cfg.train, run, {})
        run.close()
    task.model.eval()
    t0 = time.perf_counter()
    rows, _ = S.score_cases(task.model, val_cases, cfg, env.device, names, env.autocast)
    infer = time.perf_counter() - t0
    s = S.summarize_rows(rows, names)
    return {"id": common.run_id(label, cfg.train.seed), "name": label, "kind": "peer" if peer else "ours",
            "model": label, "seed": cfg.train.seed, "params": n_params, "steps": result.step,
            "stopped_by": result.stopped_by, "train_seconds": result.train_seconds,
            "wall_seconds": result.wall_seconds, "budget_seconds": budget,
            "patches_per_second": result.items_per_second, "items_per_second": result.items_per_second,
            "dice_anterior": s["dice_anterior"], "dice_posterior": s["dice_posterior"], "dice_mean": s["val_dice"],
            "hd95_anterior_mm": s["hd95_anterior"], "hd95_posterior_mm": s["hd95_posterior"],
            "abs_volume_diff_ml_anterior": s.get("vol_absdiff_ml_anterior"),
            "abs_volume_diff_ml_posterior": s.get("vol_absdiff_ml_posterior"),
            "volumes_per_second": round(len(val_cases) / max(infer, 1e-9), 3),
            "metric": "dice_mean", "value": s["val_dice"], "throughput": result.items_per_second,
            "loadavg_after": common.loadavg()}


def main(argv=None) -> None:
    p = common.parser(__doc__, COMPARES)
    p.add_argument("--budget", type=float, default=300.0, help="training seconds per model and seed")
    p.add_argument("--peer", default="monai-unet", help="monai-unet, monai-vnet or none")
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--patch", type=int, nargs=3, default=[32, 48, 32])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: fp32 (TF32 matmuls on CUDA); bf16 autocast overflowed V-Net gradients on CPU")
    p.add_argument("--limit", type=int, default=0, help="use only the first N cases (smoke runs)")
    args = p.parse_args(argv)

    from neuralsight import config as C
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks import segment3d as S

    if args.precision == "auto":
        args.precision = "fp32"
    overrides = [f"data.patch_size={list(args.patch)}", f"model.base_channels={args.base_channels}",
                 f"model.kernel_size={args.kernel_size}", f"train.batch_size={args.batch_size}",
                 f"train.lr={args.lr}", f'train.device="{args.device}"', f'train.precision="{args.precision}"',
                 "train.epochs=0", "train.warmup=0.05", f"data.limit={args.limit}"]
    cfg = C.build(S.Config, preset="hippocampus", overrides=overrides)
    env = setup(cfg.train)
    bench = common.Benchmark("segment3d", args, env.device, argv)
    t0 = time.perf_counter()
    train_cases, val_cases, names, folder = S.load_split(cfg)
    load_seconds = time.perf_counter() - t0
    print(f"{len(train_cases)} train / {len(val_cases)} val cases from {folder} in {load_seconds:.1f}s; "
          f"device {env.device} {env.precision}; loadavg {common.loadavg()}", flush=True)

    models = [("vnet", None)] + ([(args.peer, args.peer)] if args.peer != "none" else [])
    runs = []
    for seed in range(args.seeds):
        for label, peer in models:
            run_cfg = C.build(S.Config, preset="hippocampus", overrides=overrides + [f"train.seed={seed}"])
            r = common.check_run(run_one(label, run_cfg, env, train_cases, val_cases, names, args.budget, peer))
            runs.append(r)
            print(json.dumps({k: r[k] for k in ("id", "steps", "stopped_by", "train_seconds", "dice_anterior",
                                                "dice_posterior", "hd95_anterior_mm", "volumes_per_second")}),
                  flush=True)

    def of(model: str) -> list[dict]:
        return [r for r in runs if r["name"] == model]

    summary = {m: {k: common.median([r[k] for r in of(m)]) for k in (
        "dice_anterior", "dice_posterior", "dice_mean", "hd95_anterior_mm", "hd95_posterior_mm", "train_seconds",
        "volumes_per_second")} for m, _ in models}
    targets = [common.target_from_runs(f"dice_{k}_median", f">= {v}", of("vnet"), key=f"dice_{k}")
               for k, v in TARGETS.items()]
    if args.peer != "none":
        peer_name = args.peer.replace("-", "_")
        targets.append(common.ratio_target(f"vnet_dice_ratio_vs_{peer_name}_{args.budget:g}s", ">= 1.0", of("vnet"),
                                           of(args.peer), key="dice_mean"))
        for k in ("anterior", "posterior"):
            targets.append(common.ratio_target(f"dice_{k}_ratio_vs_{peer_name}_equal_time", ">= 1.0", of("vnet"),
                                               of(args.peer), key=f"dice_{k}"))
    path = bench.write(
        targets, runs, precision=env.precision, median=summary, anchors=ANCHORS, budget_seconds=args.budget,
        setup={"patch_size": list(args.patch), "batch_size": args.batch_size, "lr": args.lr, "loss": "dice_ce",
               "base_channels": args.base_channels, "kernel_size": args.kernel_size, "depth": cfg.model.depth,
               "inference": "sliding window, overlap 0.5, Gaussian blending", "load_seconds": round(load_seconds, 2)},
        split={"seed": cfg.data.split_seed, "train": [c.name for c in train_cases], "val": [c.name for c in val_cases]})
    print(json.dumps({"targets": targets, "median": summary}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    common.main(main)

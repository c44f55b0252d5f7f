"""Segmentation benchmark: neuralsight UNet vs MONAI BasicUNet on the same data, loss, augmentation and time.

Datasets: the shared Oxford-IIIT Pet subset (official trainval -> test; trimap classes, so one model gives
both the 3-class mIoU and the binary pet-vs-background IoU as segmentation_models_pytorch evaluates it),
liver-ct-2d (split by source volume) and dental-teeth-2d (split by photo id). Both models train in the
same loop below (AdamW, one-cycle LR, CE+Dice, on-device augmentation, bf16 autocast where available)
for the same wall-clock budget; quality is measured on the held-out split at the end.

    python benchmarks/segmentation.py --hardware auto --device cpu --seeds 1 --budget 60
    python benchmarks/segmentation.py --hardware auto --device cuda --seeds 3 --budget 300 --image-size 160

Writes benchmarks/results/segmentation-<hardware>.json (top level as in DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATASETS = {"pets": "oxford-pets", "liver": "liver-ct-2d", "dental": "dental-teeth-2d"}


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def build(peer: str, num_classes: int, args):
    if peer == "monai_basicunet":
        from monai.networks.nets import BasicUNet

        return BasicUNet(spatial_dims=2, in_channels=3, out_channels=num_classes)
    from neuralsight.models.unet import UNet

    return UNet(2, 3, num_classes, depth=args.depth, base_channels=args.base_channels)


def run_one(name: str, model_name: str, seed: int, data, env, args) -> dict:
    import torch

    from neuralsight.data.augment import AugmentConfig, augment
    from neuralsight.data.images import IGNORE
    from neuralsight.engine.losses import SegmentationLoss
    from neuralsight.tasks.segment import MEAN, STD, predict_arrays, to_tensors

    torch.manual_seed(seed)
    device = env.device
    num_classes = len(data.class_names)
    model = build(model_name, num_classes, args).to(device).to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    xi, yi = to_tensors(data.train, device)
    vi, vm = to_tensors(data.val, device)
    loss_fn = SegmentationLoss("dice_ce", ignore_index=IGNORE)
    aug = AugmentConfig(vflip=0.5 if name != "pets" else 0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    # One-cycle over the time budget: the LR follows elapsed time, so both models get the same schedule.
    n, b = len(xi), args.batch_size
    seen, steps, t0 = 0, 0, time.perf_counter()
    model.train()
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed >= args.budget:
            break
        frac = elapsed / args.budget
        lr = args.lr * (frac / 0.1 if frac < 0.1 else 0.5 * (1 + math.cos(math.pi * (frac - 0.1) / 0.9)))
        for g in opt.param_groups:
            g["lr"] = max(lr, args.lr * 0.01)
        idx = torch.randint(0, n, (b,), device=device)
        x, y = augment(xi[idx].float() / 255, yi[idx].long(), aug)
        x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
        with env.autocast():
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps += 1
        seen += b
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - t0
    model.eval()
    t1 = time.perf_counter()
    with torch.no_grad(), env.autocast():
        out = predict_arrays(model, vi, vm, num_classes, batch_size=32)["metrics"]
    infer_seconds = time.perf_counter() - t1
    return {"dataset": name, "model": model_name, "seed": seed, "params": params, "steps": steps,
            "train_seconds": round(train_seconds, 2), "throughput": round(seen / train_seconds, 2),
            "infer_images_per_s": round(len(vi) / infer_seconds, 2),
            "fg_iou": out["fg_iou"], "fg_dice": out["fg_dice"], "miou": out["miou"], "mdice": out["mdice"],
            "pixel_acc": out["pixel_acc"], "train_images": n, "test_images": len(vi)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hardware", default="auto", help="tag for the result file: auto, cpu, h100, ...")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=120.0, help="training seconds per model and seed")
    ap.add_argument("--datasets", default="pets,liver,dental")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base-channels", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)

    from neuralsight.config import TrainConfig
    from neuralsight.engine.device import describe_hardware, hardware_tag
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks.segment import DataConfig, load_data

    env = setup(TrainConfig(device=args.device, threads=args.threads, seed=0))
    tag = hardware_tag(env.device) if args.hardware == "auto" else args.hardware
    runs, targets = [], []
    for name in [d for d in args.datasets.split(",") if d]:
        cfg = DataConfig(dataset=DATASETS[name], image_size=args.image_size, mask_mode="trimap")
        data = load_data(cfg)
        for seed in range(args.seeds):
            for model_name in ("neuralsight_unet", "monai_basicunet"):
                r = run_one(name, model_name, seed, data, env, args)
                print(json.dumps(r), flush=True)
                runs.append(r)
        med = {m: {k: statistics.median(r[k] for r in runs if r["dataset"] == name and r["model"] == m)
                   for k in ("fg_iou", "fg_dice", "miou", "throughput")}
               for m in ("neuralsight_unet", "monai_basicunet")}
        ours, peer = med["neuralsight_unet"], med["monai_basicunet"]
        key = "fg_dice" if name == "liver" else "fg_iou"
        q = ours[key] / max(peer[key], 1e-9)
        s = ours["throughput"] / max(peer["throughput"], 1e-9)
        targets.append({"name": f"{name}_{key}_ratio_vs_monai_at_equal_time", "target": ">= 1.0",
                        "measured": round(q, 4), "met": q >= 1.0})
        targets.append({"name": f"{name}_throughput_ratio_vs_monai", "target": ">= 1.2",
                        "measured": round(s, 4), "met": s >= 1.2})
        if name == "pets":
            targets.append({"name": "pets_binary_iou", "target": ">= 0.90", "measured": round(ours["fg_iou"], 4),
                            "met": ours["fg_iou"] >= 0.90})
            targets.append({"name": "pets_trimap_miou (recorded)", "target": "n/a",
                            "measured": round(ours["miou"], 4), "met": None})
        if name == "liver":
            targets.append({"name": "liver_dice", "target": ">= 0.95", "measured": round(ours["fg_dice"], 4),
                            "met": ours["fg_dice"] >= 0.95})
        if name == "dental":
            targets.append({"name": "dental_tooth_iou (recorded)", "target": "n/a",
                            "measured": round(ours["fg_iou"], 4), "met": None})
    hw = describe_hardware(env.device)
    hw["loadavg"] = list(os.getloadavg())
    hw["precision"] = env.precision
    result = {"benchmark": "segmentation", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "git": _git(),
              "hardware": hw, "command": "python benchmarks/segmentation.py " + " ".join(argv or sys.argv[1:]),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "targets": targets, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"segmentation-{tag}.json"
    from neuralsight.io import atomic_write_json

    atomic_write_json(path, result)
    print(f"wrote {path}")
    for t in targets:
        print(f"  {t['name']}: {t['measured']} (target {t['target']}, met {t['met']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

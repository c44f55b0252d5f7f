"""Segmentation benchmark: neuralsight UNet vs MONAI BasicUNet on the same data, loss, augmentation and time.

Datasets: the shared Oxford-IIIT Pet subset (trimap classes, so one model gives both the 3-class mIoU and
the binary pet-vs-background IoU as segmentation_models_pytorch evaluates it), liver-ct-2d (split by source
volume) and dental-teeth-2d (split by photo id). Both models train in the same loop below (AdamW,
one-cycle LR over the budget, CE+Dice, on-device augmentation, bf16 autocast where available), timed by
``common.timed_loop`` for the same training seconds; quality is measured on the task's held-out split at
the end (``tasks.segment.load_data``'s ``val``).

    python benchmarks/segmentation.py --hardware cpu --device cpu --seeds 3 --budget 75            # -> runs/benchmarks/
    python benchmarks/segmentation.py --hardware cpu --device cpu --seeds 3 --budget 75 --write    # -> benchmarks/results/
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

COMPARES = ("our UNet against MONAI's BasicUNet trained by the same loop, loss and augmentation for equal "
            "training seconds, same seeds; pets foreground IoU, liver Dice, dental tooth IoU and images/s")

DATASETS = {"pets": "oxford-pets", "liver": "liver-ct-2d", "dental": "dental-teeth-2d"}


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
    # One-cycle over the time budget: the LR follows the budget used, so both models get the same schedule.
    n, b = len(xi), args.batch_size

    def step(fraction):
        lr = args.lr * (fraction / 0.1 if fraction < 0.1 else 0.5 * (1 + math.cos(math.pi * (fraction - 0.1) / 0.9)))
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

    model.train()
    loop = common.timed_loop(step, args.budget, synchronize=torch.cuda.synchronize if device.type == "cuda" else None)
    model.eval()
    t1 = time.perf_counter()
    with torch.no_grad(), env.autocast():
        out = predict_arrays(model, vi, vm, num_classes, batch_size=32)["metrics"]
    infer_seconds = time.perf_counter() - t1
    throughput = loop["steps"] * b / loop["train_seconds"]
    return {"id": common.run_id(f"{name}/{model_name}", seed), "name": f"{name}/{model_name}",
            "kind": "ours" if model_name == "neuralsight_unet" else "peer", "dataset": name, "model": model_name,
            "seed": seed, "params": params, **loop, "throughput": throughput, "items_per_second": throughput,
            "infer_images_per_s": round(len(vi) / infer_seconds, 2), "metric": "fg_iou", "value": out["fg_iou"],
            "fg_iou": out["fg_iou"], "fg_dice": out["fg_dice"], "miou": out["miou"], "mdice": out["mdice"],
            "pixel_acc": out["pixel_acc"], "train_images": n, "test_images": len(vi)}


def main(argv=None) -> int:
    ap = common.parser(__doc__, COMPARES)
    ap.add_argument("--budget", type=float, default=120.0, help="training seconds per model and seed")
    ap.add_argument("--datasets", default="pets,liver,dental")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base-channels", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    from neuralsight.config import TrainConfig
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks.segment import DataConfig, load_data

    env = setup(TrainConfig(device=args.device, threads=args.threads, seed=0))
    bench = common.Benchmark("segmentation", args, env.device, argv)
    runs, targets = [], []
    for name in [d for d in args.datasets.split(",") if d]:
        cfg = DataConfig(dataset=DATASETS[name], image_size=args.image_size, mask_mode="trimap")
        data = load_data(cfg)
        for seed in range(args.seeds):
            for model_name in ("neuralsight_unet", "monai_basicunet"):
                r = run_one(name, model_name, seed, data, env, args)
                print({k: r[k] for k in ("id", "steps", "train_seconds", "fg_iou", "fg_dice", "miou")}, flush=True)
                runs.append(r)
        ours = [r for r in runs if r["name"] == f"{name}/neuralsight_unet"]
        peer = [r for r in runs if r["name"] == f"{name}/monai_basicunet"]
        key, label = {"pets": ("fg_iou", "fg_iou"), "liver": ("fg_dice", "dice"), "dental": ("fg_iou", "iou")}[name]
        rule = ">= 1.03" if name == "pets" else ">= 1.02"
        targets.append(common.ratio_target(f"{name}_{label}_ratio_vs_monai_{args.budget:g}s", rule, ours, peer, key=key))
        targets.append(common.ratio_target(f"{name}_throughput_ratio_vs_monai", ">= 1.2", ours, peer,
                                           key="throughput"))
        if name == "pets":
            targets.append(common.target_from_runs("pets_binary_iou", ">= 0.90", ours, key="fg_iou"))
        if name == "liver":
            targets.append(common.target_from_runs("liver_dice", ">= 0.95", ours, key="fg_dice"))
    path = bench.write(targets, runs, precision=env.precision,
                       settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    print(f"wrote {path}")
    for t in targets:
        print(f"  {t['name']}: {t['measured']} (target {t['target']}, met {t['met']})")
    return 0


if __name__ == "__main__":
    common.main(main)

"""Segmentation benchmark: `neuralsight train segment` against MONAI's BasicUNet on the same data, recipe and time.

Datasets (each through its preset): the shared Oxford-IIIT Pet subset (``pets``: trimap classes; the headline is
the binary pet-vs-background IoU as segmentation_models_pytorch evaluates it), liver-ct-2d (``liver``, split by
source volume), dental-teeth-2d (``dental``, split by photo) and dental-xray (``dental_xray``, 50 panoramic
radiographs split by radiograph).

Ours is what a user gets: ``neuralsight train segment --preset P --max-time BUDGET --seed N`` (``common.run_ours``):
it trains on the train split, the validation split picks its checkpoint, and the test split is scored once
(``metrics.test`` of its summary.json). The peer, MONAI's ``BasicUNet``, gets the same: the preset's data, splits,
augmentation and loss (the task's own ``SegmentTrain`` adapter), the engine's optimizer, schedule over the budget,
clipping and precision (``common.recipe_loop``), its best weights on the validation split, and one score on the
test split; it trains for the median training seconds of our runs (equal time within 5 %), for as many seeds.
Pets also run at the long budget (``--long-budget``, nominally 600 s) and once with ``--quick`` (the preset's
own quick budget unless ``--quick-budget``). A target measured at a budget other than the one in its name is
recorded as not comparable (``measured`` null, ``met`` false, the reason and what was measured beside it).

    python benchmarks/segmentation.py --hardware cpu --device cpu --seeds 3            # -> runs/benchmarks/
    python benchmarks/segmentation.py --hardware cpu --device cpu --seeds 3 --write    # -> benchmarks/results/
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

COMPARES = ("`neuralsight train segment` (each dataset's preset) against MONAI's BasicUNet trained on the same "
            "splits, augmentation, loss and schedule for equal training seconds, same seeds, both picked on val "
            "and scored once on test; pets foreground IoU, liver and dental-xray Dice, dental tooth IoU")

DATASETS = {"pets": "oxford-pets", "liver": "liver-ct-2d", "dental": "dental-teeth-2d", "dental_xray": "dental-xray"}
PRESETS = {"pets": "pets", "liver": "liver", "dental": "dental", "dental_xray": "dental-xray"}
SHORT, LONG = 75.0, 600.0          # the nominal budgets in the target names
# dataset -> (ratio target at the short budget, the metric it compares, rule)
RATIOS = {"pets": ("pets_fg_iou_ratio_vs_monai_75s", "fg_iou", ">= 1.03"),
          "liver": ("liver_dice_ratio_vs_monai_75s", "fg_dice", ">= 1.02"),
          "dental": ("dental_iou_ratio_vs_monai_75s", "fg_iou", ">= 1.02"),
          "dental_xray": ("dental_xray_dice_ratio_vs_monai_75s", "fg_dice", ">= 1.02")}
PETS_LONG = ("pets_fg_iou_ratio_vs_monai_600s", ">= 1.03")
PETS_LONG_ABS = ("pets_fg_iou_600s", ">= 0.82")
PETS_QUICK = ("pets_quick_fg_iou", ">= 0.75")
SCORES = ("fg_iou", "fg_dice", "miou", "mdice", "pixel_acc", "miou_per_image")


def scores(metrics: dict, prefix: str = "") -> dict:
    return {f"{prefix}{k}": metrics[k] for k in SCORES if k in (metrics or {})}


def run_ours(dataset: str, seed: int, budget: float | None, args, label: str, quick: bool = False) -> dict:
    """``neuralsight train segment --preset P --max-time B --seed N`` (``--quick``); its test and val scores."""
    key = RATIOS[dataset][1]
    record = common.run_ours("segment", seed, budget, preset=PRESETS[dataset], name=label, overrides=args.sets,
                             args=["--quick"] if quick else [], device=args.device, metric=f"metrics.test.{key}")
    metrics = record.get("metrics") or {}
    record.update(dataset=dataset, model="neuralsight_unet", **scores(metrics.get("test")),
                  **scores(metrics.get("val"), "val_"), throughput=record.get("items_per_second"), quick=quick)
    return record


def peer_model(num_classes: int, features):
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=3, out_channels=num_classes, features=tuple(features))


def run_peer(dataset: str, seed: int, budget: float, args, label: str, cache: dict) -> dict:
    """MONAI BasicUNet on our preset's data, splits, augmentation, loss and schedule for ``budget`` training
    seconds; picked on val, scored once on test."""
    import torch

    from neuralsight import config as C
    from neuralsight.engine.trainer import setup
    from neuralsight.tasks import segment as S
    from neuralsight.tasks.segmentation import predict_arrays, to_tensors

    overrides = [*args.sets, f"train.seed={seed}", f'train.device="{args.device}"']
    cfg = C.build(S.Config, preset=PRESETS[dataset], overrides=overrides)
    env = setup(cfg.train)
    if dataset not in cache:                      # the split does not move with the seed: decode once
        cache[dataset] = S.load_data(cfg.data)
    data = cache[dataset]
    task = S.SegmentTrain(cfg, data, env.device)
    torch.manual_seed(seed)
    task.model = model = peer_model(task.num_classes, args.peer_features).to(env.device)
    loop = common.recipe_loop(task, model, env, cfg.train, budget, evaluate=task.evaluate, monitor=task.monitor,
                              mode=task.monitor_mode)
    images, masks = to_tensors(data.test, env.device)
    t0 = time.perf_counter()
    with torch.no_grad(), env.autocast():
        test = predict_arrays(model, images, masks, task.num_classes, batch_size=max(8, cfg.train.batch_size))["metrics"]
    infer = time.perf_counter() - t0
    key = RATIOS[dataset][1]
    best_val, monitor = loop.pop("best_val"), loop.pop("monitor")
    return common.peer_run(label, seed, loop, test[key], key, dataset=dataset, model="monai_basicunet",
                           features=list(args.peer_features), params=sum(p.numel() for p in model.parameters()),
                           **scores(test), **{f"val_{monitor}": best_val}, throughput=loop["items_per_second"],
                           precision=env.precision, infer_images_per_s=round(len(images) / max(infer, 1e-9), 2),
                           images={"train": len(data.train), "val": len(data.val), "test": len(data.test)})


def compare(dataset: str, budget: float, args, runs: list[dict], cache: dict, tag: str) -> tuple[list, list]:
    """Ours and the peer for every seed at ``budget``: ``(ours, peers)`` (appended to ``runs``)."""
    ours = []
    for seed in range(args.seeds):
        r = run_ours(dataset, seed, budget, args, f"{dataset}/neuralsight_unet/{tag}")
        ours.append(r)
        print(f"{r['id']}: test {RATIOS[dataset][1]} {r['value']:.4f}, {r['train_seconds']:.1f} s trained, "
              f"{r['steps']} steps", flush=True)
    equal = common.median([r["train_seconds"] for r in ours])
    peers = []
    for seed in range(args.seeds):
        p = run_peer(dataset, seed, equal, args, f"{dataset}/monai_basicunet/{tag}", cache)
        peers.append(p)
        print(f"{p['id']}: test {RATIOS[dataset][1]} {p['value']:.4f}, {p['train_seconds']:.1f} s trained, "
              f"{p['steps']} steps", flush=True)
    runs += ours + peers
    return ours, peers


def main(argv=None) -> int:
    ap = common.parser(__doc__, COMPARES)
    ap.add_argument("--budget", type=float, default=SHORT, help=f"--max-time of ours per dataset and seed (nominal "
                                                                 f"{SHORT:g} s; the peer gets our training seconds)")
    ap.add_argument("--long-budget", type=float, default=LONG, help=f"pets at the long budget (nominal {LONG:g} s; "
                                                                    "0 skips)")
    ap.add_argument("--quick-budget", type=float, default=None,
                    help="--max-time of the pets --quick runs (default: the quick preset's own)")
    ap.add_argument("--no-quick", action="store_true", help="skip the pets --quick runs")
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma list from {', '.join(DATASETS)}")
    ap.add_argument("--peer-features", type=int, nargs=6, default=[32, 32, 64, 128, 256, 32],
                    help="BasicUNet features (MONAI's default; smaller only for smoke runs)")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="config override for ours and the peer alike (recorded; e.g. smoke runs)")
    args = ap.parse_args(argv)
    chosen = [d for d in args.datasets.split(",") if d]
    unknown = [d for d in chosen if d not in DATASETS]
    if unknown:
        raise common.BenchmarkError(f"unknown dataset(s) {unknown}: choose from {', '.join(DATASETS)}")

    from neuralsight.engine.device import resolve_device

    device = resolve_device(args.device)
    bench = common.Benchmark("segmentation", args, device, argv)
    args.device = device.type
    runs: list[dict] = []
    targets: list[dict] = []
    cache: dict = {}
    started = time.time()
    for name, (target_name, key, rule) in RATIOS.items():
        if name not in chosen:
            targets.append(common.not_run(target_name, rule, f"{name} not in --datasets"))
            continue
        ours, peers = compare(name, args.budget, args, runs, cache, f"{args.budget:g}s")
        targets.append(common.at_budget(common.ratio_target(target_name, rule, ours, peers, key=key),
                                        SHORT, args.budget))
        targets.append(common.ratio_target(f"{name}_throughput_ratio_vs_monai", ">= 1.2", ours, peers,
                                           key="throughput"))
        if name == "liver":
            targets.append(common.at_budget(common.target_from_runs("liver_dice", ">= 0.95", ours, key="fg_dice"),
                                            SHORT, args.budget))
    if "pets" in chosen and args.long_budget:
        ours, peers = compare("pets", args.long_budget, args, runs, cache, f"{args.long_budget:g}s")
        targets.append(common.at_budget(common.ratio_target(PETS_LONG[0], PETS_LONG[1], ours, peers,
                                                            key="fg_iou"), LONG, args.long_budget))
        targets.append(common.at_budget(common.target_from_runs(*PETS_LONG_ABS, ours, key="fg_iou"),
                                        LONG, args.long_budget))
    else:
        why = "pets not in --datasets" if "pets" not in chosen else "--long-budget 0"
        targets += [common.not_run(*PETS_LONG, why), common.not_run(*PETS_LONG_ABS, why)]
    if "pets" in chosen and not args.no_quick:
        quick = []
        for seed in range(args.seeds):
            r = run_ours("pets", seed, args.quick_budget, args, "pets/neuralsight_unet/quick", quick=True)
            quick.append(r)
            print(f"{r['id']}: test fg_iou {r['value']:.4f} in {r['train_seconds']:.1f} s", flush=True)
        runs += quick
        targets.append(common.at_budget(common.target_from_runs(*PETS_QUICK, quick, key="fg_iou"), None,
                                        args.quick_budget, what="--quick with --max-time"))
    else:
        targets.append(common.not_run(*PETS_QUICK, "pets not in --datasets" if "pets" not in chosen
                                      else "--no-quick"))
    splits = {d: {"sizes": {k: len(getattr(v, k)) for k in ("train", "val", "test")}, "notes": v.notes,
                  "unit": v.split.get("unit")} for d, v in cache.items()}
    path = bench.write(targets, runs, budgets={"short": {"nominal": SHORT, "used": args.budget},
                                               "long": {"nominal": LONG, "used": args.long_budget or None},
                                               "quick": {"nominal": "the pets preset's [quick] max_time",
                                                         "used": args.quick_budget}},
                       presets={d: PRESETS[d] for d in chosen}, overrides=args.sets, splits=splits,
                       peer={"name": "monai_basicunet", "features": list(args.peer_features),
                             "recipe": "the preset's data, splits, augmentation and loss (SegmentTrain), the "
                                       "engine's optimizer, budget-fraction schedule, clipping and precision; best "
                                       "weights on val (task monitor), scored once on test"},
                       protocol="train on train, pick the checkpoint on val, score once on test",
                       total_seconds=round(time.time() - started, 1))
    for t in targets:
        print(f"  {t['name']}: {t['measured']} (target {t['target']}, met {t['met']})"
              + (f" [{t['reason']}]" if t.get("reason") else ""))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    common.main(main)

"""Benchmark: `neuralsight train segment3d` (V-Net, hippocampus preset) against a MONAI peer, same split and time.

Ours is what a user gets: ``neuralsight train segment3d --preset hippocampus --max-time BUDGET --seed N``
(``common.run_ours``): it trains on the train cases, the validation cases pick its checkpoint, and the test cases
are scored once (``metrics.test`` of summary.json; sliding-window inference with Gaussian blending). The peer,
MONAI's UNet (the tutorial configuration; or ``--peer monai-vnet``), gets the same: the preset's split by case,
foreground-biased patches, augmentation and CE + Dice (the task's ``Segment3DTrain``), the engine's optimizer,
schedule over the budget and precision (``common.recipe_loop``), its best weights on the validation cases, one
score on the test cases, for the median training seconds of our runs (equal time within 5 %) and as many seeds.
Recorded per model and seed: Dice mean / anterior (1) / posterior (2), HD95 (mm), volume difference, training
seconds, patches/s; medians over seeds. Targets are named for the nominal 300 s budget; at another ``--budget``
they are recorded as not comparable.

    python benchmarks/segment3d.py --hardware auto --device cpu --seeds 3            # -> runs/benchmarks/
    python benchmarks/segment3d.py --hardware auto --device cpu --seeds 3 --write    # -> benchmarks/results/

Anchors (MSD test set, not this split): nnU-Net 0.90 / 0.89, MONAI DynUNet 0.90 / 0.88.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

COMPARES = ("`neuralsight train segment3d` (V-Net) against MONAI's UNet (or VNet) on the same split, patches, loss, "
            "schedule and training seconds, same seeds, both picked on val and scored once on test; hippocampus "
            "Dice mean/anterior/posterior, HD95 and patches/s")
TARGETS = {"anterior": 0.88, "posterior": 0.87}
NOMINAL = 300.0                     # the budget in the target names
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


SCORES = ("dice", "dice_anterior", "dice_posterior", "hd95_anterior", "hd95_posterior", "vol_absdiff_ml_anterior",
          "vol_absdiff_ml_posterior", "volumes_per_second", "cases")


def scores(metrics: dict) -> dict:
    """The test split's per-structure scores under the names this file has always used."""
    m = metrics or {}
    rename = {"dice": "dice_mean", "hd95_anterior": "hd95_anterior_mm", "hd95_posterior": "hd95_posterior_mm",
              "vol_absdiff_ml_anterior": "abs_volume_diff_ml_anterior",
              "vol_absdiff_ml_posterior": "abs_volume_diff_ml_posterior"}
    return {rename.get(k, k): m[k] for k in SCORES if k in m}


def run_ours(seed: int, budget: float, sets: list[str], args) -> dict:
    """``neuralsight train segment3d --preset hippocampus --max-time B --seed N``: picked on val, scored on test."""
    record = common.run_ours("segment3d", seed, budget, preset="hippocampus", name="vnet", overrides=sets,
                             device=args.device, metric="metrics.test.dice")
    metrics = record.get("metrics") or {}
    record.update(model="vnet", **scores(metrics.get("test")), val_dice=(metrics.get("val") or {}).get("val_dice"),
                  patches_per_second=record.get("items_per_second"), throughput=record.get("items_per_second"),
                  loadavg_after=common.loadavg())
    return record


def run_peer(peer: str, seed: int, budget: float, sets: list[str], args, cache: dict) -> dict:
    """The MONAI net on our preset's split, patches, augmentation and loss (``Segment3DTrain``) with the engine's
    optimizer and schedule for ``budget`` training seconds; picked on val, scored once on test."""
    import torch

    from neuralsight import config as C
    from neuralsight.engine.trainer import seed_everything, setup
    from neuralsight.tasks import segment3d as S
    from neuralsight.tasks.segmentation import score_cases, summarize_rows

    cfg = C.build(S.Config, preset="hippocampus", overrides=[*sets, f"train.seed={seed}",
                                                              f'train.device="{args.device}"'])
    env = setup(cfg.train)
    if "split" not in cache:                      # the split does not move with the seed: read once
        cache["split"] = S.load_split(cfg)
    parts, names, folder = cache["split"]
    seed_everything(seed)
    task = S.Segment3DTrain(cfg, env.device, parts.train, parts.val, names, folder, 0.0, parts.test)
    task.model = model = peer_model(peer, len(names)).to(env.device)
    loop = common.recipe_loop(task, model, env, cfg.train, budget, evaluate=task.evaluate, monitor=task.monitor,
                              mode=task.monitor_mode)
    t0 = time.perf_counter()
    with torch.no_grad():
        rows, _ = score_cases(model, parts.test, cfg, env.device, names, env.autocast)
    infer = time.perf_counter() - t0
    s = {**summarize_rows(rows, names, "dice"), "cases": len(rows),
         "volumes_per_second": len(rows) / max(infer, 1e-9)}
    loop.pop("monitor")
    best_val = loop.pop("best_val")
    return common.peer_run(peer, seed, loop, s["dice"], "test dice", model=peer, **scores(s), val_dice=best_val,
                           params=sum(p.numel() for p in model.parameters()), precision=env.precision,
                           patches_per_second=loop["items_per_second"], throughput=loop["items_per_second"],
                           loadavg_after=common.loadavg())


def main(argv=None) -> None:
    p = common.parser(__doc__, COMPARES)
    p.add_argument("--budget", type=float, default=NOMINAL, help=f"--max-time of ours per seed (nominal {NOMINAL:g} s; "
                                                                 "the peer gets our training seconds)")
    p.add_argument("--peer", default="monai-unet", help="monai-unet, monai-vnet or none")
    p.add_argument("--limit", type=int, default=0, help="use only the first N cases (smoke runs)")
    p.add_argument("--set", dest="sets", action="append", default=[],
                   help="config override of the hippocampus preset for ours and the peer alike (recorded)")
    args = p.parse_args(argv)

    from neuralsight.engine.device import resolve_device

    device = resolve_device(args.device)
    bench = common.Benchmark("segment3d", args, device, argv)
    args.device = device.type
    sets = [*([f"data.limit={args.limit}"] if args.limit else []), *args.sets]
    runs, cache = [], {}
    started = time.time()
    for seed in range(args.seeds):
        r = run_ours(seed, args.budget, sets, args)
        runs.append(r)
        print(json.dumps({k: r.get(k) for k in ("id", "steps", "stopped_by", "train_seconds", "dice_mean",
                                                "dice_anterior", "dice_posterior", "hd95_anterior_mm")}), flush=True)
    ours = list(runs)
    peers = []
    if args.peer != "none":
        equal = common.median([r["train_seconds"] for r in ours])
        for seed in range(args.seeds):
            r = run_peer(args.peer, seed, equal, sets, args, cache)
            peers.append(r)
            print(json.dumps({k: r.get(k) for k in ("id", "steps", "stopped_by", "train_seconds", "dice_mean",
                                                    "dice_anterior", "dice_posterior")}), flush=True)
        runs += peers

    def of(model: str) -> list[dict]:
        return [r for r in runs if r["name"] == model]

    summary = {m: {k: common.median([r.get(k) for r in of(m)]) for k in (
        "dice_mean", "dice_anterior", "dice_posterior", "hd95_anterior_mm", "hd95_posterior_mm", "train_seconds",
        "volumes_per_second")} for m in ["vnet"] + ([args.peer] if peers else [])}
    targets = [common.at_budget(common.target_from_runs("best_dice_mean_300s", ">= 0.88", ours, key="dice_mean"),
                                NOMINAL, args.budget)]
    targets += [common.at_budget(common.target_from_runs(f"dice_{k}_median", f">= {v}", ours, key=f"dice_{k}"),
                                 NOMINAL, args.budget) for k, v in TARGETS.items()]
    name = f"vnet_dice_ratio_vs_{args.peer.replace('-', '_')}_300s"
    if peers:
        targets.append(common.at_budget(common.ratio_target(name, ">= 1.0", ours, peers, key="dice_mean"),
                                        NOMINAL, args.budget))
        for k in ("anterior", "posterior"):
            targets.append(common.at_budget(common.ratio_target(
                f"dice_{k}_ratio_vs_{args.peer.replace('-', '_')}_equal_time", ">= 1.0", ours, peers, key=f"dice_{k}"),
                NOMINAL, args.budget))
    else:
        targets.append(common.not_run("vnet_dice_ratio_vs_monai_unet_300s", ">= 1.0", "--peer none"))
    split = cache.get("split")
    if split is None:
        from neuralsight import config as C
        from neuralsight.tasks import segment3d as S

        split = S.load_split(C.build(S.Config, preset="hippocampus", overrides=sets))
    parts = split[0]
    path = bench.write(
        targets, runs, median=summary, anchors=ANCHORS, budget_seconds=args.budget, nominal_budget_seconds=NOMINAL,
        preset="hippocampus", overrides=sets,
        peer={"name": args.peer, "recipe": "the preset's split, patches, augmentation and loss (Segment3DTrain), "
              "the engine's optimizer, budget-fraction schedule, clipping and precision; best weights on val "
              "(val_dice), scored once on test"} if peers else None,
        protocol="train on train, pick the checkpoint on val, score once on test (sliding window, Gaussian blending)",
        split={"seed": 0, "unit": "case", **{k: [c.name for c in getattr(parts, k)] for k in ("train", "val", "test")}},
        total_seconds=round(time.time() - started, 1))
    print(json.dumps({"targets": targets, "median": summary}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    common.main(main)

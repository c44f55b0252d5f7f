"""Fashion-MNIST: our default preset against the pytorch/examples recipe, test accuracy at equal training time.

Splits: the task's own, train 55,000 / val 5,000 (seeded; it picks our checkpoint) / test 10,000 (scored once). The
peers train on the same 55,000 images, pick no checkpoint, and are scored once on the same test images.

Runs, each for ``--seeds`` seeds:

- ``fashion`` (ours): ``neuralsight train classify --preset fashion --max-time BUDGET --seed N``, what a
  user gets (the lecture CNN, uint8 data on the device, on-device augmentation, one-cycle schedule, flip
  test-time augmentation); each run
  is then applied to the real product photos of ``shared/datasets/fashion-photos`` with
  ``neuralsight predict RUN FOLDER --json`` as a user would (``real_photos_acc``, top-1 over its 135 photos);
- ``fashion-quick`` (ours): ``neuralsight train classify --quick`` (``quick_test_acc``);
- ``lecture`` (ours): the lecture's CNN through the same command (``--preset lecture``);
- ``pytorch-examples`` (peer): pytorch/examples ``mnist/main.py`` as a user writes it (DataLoader over
  float tensors, batch 64, Adadelta lr 1.0, StepLR 0.7, fp32) with the lecture's CNN;
- ``plain-loop`` (peer): the same loop at the lecture preset's batch size and our precision (bf16 autocast
  where the hardware has it): the engine-speed ratio against ``lecture``;
- ``fashion-best`` (GPU by default): the ``best`` preset with a longer budget.

Each peer trains for the median training seconds of the runs of ours it is compared with, so "equal
time" holds within 5 % (recorded). Training seconds exclude evaluation for ours and for the peers.
The CPU targets are named for the nominal 120 s budget (and the quick preset's own 45 s); at another
``--budget`` / ``--quick-budget`` they are recorded as not comparable (measured null, met false, the reason).
The default run's model-FLOPs utilisation (torch.utils.flop_counter x images/s over this machine's
measured bf16 matmul peak) is recorded per run. Usage::

    python benchmarks/fashion_mnist.py --hardware cpu --seeds 3            # -> runs/benchmarks/
    python benchmarks/fashion_mnist.py --hardware cpu --seeds 3 --write    # -> benchmarks/results/
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

COMPARES = ("our default `train classify` preset (and the lecture CNN in our engine) against the pytorch/examples "
            "mnist recipe and the same plain loop at our batch size and precision, same seeds, equal training "
            "seconds; Fashion-MNIST test accuracy and images/s")


NOMINAL_CPU = 120.0     # the budget in test_acc_120s


def find_photos(explicit: Path | None) -> Path | None:
    """The fashion-photos folder (``labels.csv`` and one folder per class), or None when there is none."""
    import os

    candidates = [explicit] if explicit else [
        *([Path(os.environ["NEURALSIGHT_DATA"]) / "fashion-photos"] if os.environ.get("NEURALSIGHT_DATA") else []),
        common.ROOT.parent / "shared" / "datasets" / "fashion-photos"]
    found = next((c for c in candidates if (Path(c) / "labels.csv").is_file()), None)
    if explicit and found is None:
        raise common.BenchmarkError(f"--photos {explicit}: no labels.csv there")
    return Path(found) if found else None


def real_photos(run_dir: Path, folder: Path) -> dict:
    """Top-1 accuracy of a saved run on the real photos, through ``neuralsight predict RUN FOLDER --json`` as a
    user runs it (the run's own preprocessing: grey, inverted when the border is light, margins trimmed, resized)."""
    import csv
    import json
    import os
    import subprocess

    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        labels = {(folder / row["file"]).resolve(): int(row["fashion_mnist_label"]) for row in csv.DictReader(f)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(common.ROOT / "src"),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "neuralsight", "predict", str(run_dir), str(folder), "--json",
                           "--out", str(run_dir / "photo-predictions")], capture_output=True, text=True, env=env,
                          timeout=600, cwd=common.ROOT)
    if proc.returncode != 0:
        raise common.BenchmarkError(f"neuralsight predict on {folder} failed (exit {proc.returncode}): "
                                    + " | ".join(proc.stderr.strip().splitlines()[-3:]))
    rows = json.loads(proc.stdout)
    classes = json.loads((run_dir / "classes.json").read_text())["classes"]
    hits = [classes.index(r["class"]) == labels[Path(r["input"]).resolve()] for r in rows
            if Path(r["input"]).resolve() in labels]
    if len(hits) != len(labels):
        raise common.BenchmarkError(f"predict scored {len(hits)} of the {len(labels)} photos in labels.csv")
    return {"real_photos_acc": sum(hits) / len(hits), "real_photos_n": len(hits)}


def probe_step_time(preset: str, device_name: str, overrides: list[str], steps: int = 20) -> float:
    """Seconds per optimizer step of ``preset`` on this machine now (after 5 warm-up steps)."""
    import torch

    from neuralsight import config as C
    from neuralsight.engine.trainer import build_optimizer, setup
    from neuralsight.tasks import classify as T

    cfg = C.build(T.Config, preset=preset, overrides=[f'train.device="{device_name}"', *overrides])
    env = setup(cfg.train)
    data = T.load_data(cfg.data, env.device)
    task = T.ClassifyTrain(cfg, data, env.device)
    model = task.model.to(memory_format=torch.channels_last) if cfg.train.channels_last else task.model
    opt = build_optimizer(model, cfg.train)
    g = torch.Generator().manual_seed(0)

    def step():
        batch = task.get_batch(torch.randint(0, task.train_size(), (cfg.train.batch_size,), generator=g))
        with env.autocast():
            loss = task.training_step(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        step()
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss.detach())
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def run_ours(preset: str, seed: int, budget: float, device_name: str, overrides: list[str], peak: float,
             runs_root: Path) -> dict:
    """``neuralsight train classify --preset P --max-time B --seed N``; its FLOPs utilisation beside it."""
    import torch
    import torch.nn.functional as F

    record = common.run_ours("classify", seed, budget, preset=preset, device=device_name, overrides=overrides,
                             runs_root=runs_root)
    model = common.model_from_run(Path(record["run_dir"]))
    x = torch.zeros(8, 1, 28, 28)
    flops = common.training_flops_per_item(model, [x], lambda out: F.cross_entropy(out.float(), torch.zeros(8).long()))
    record.update(common.flops_utilisation(flops, record["items_per_second"], peak))
    record["throughput"] = record["items_per_second"]
    record["val_acc"] = (record.get("metrics") or {}).get("val_acc")
    return record


class Net:
    """The lecture's CNN as pytorch/examples would write it (built lazily: torch is imported in main)."""

    def __new__(cls):
        import torch
        import torch.nn.functional as F
        from torch import nn

        class _Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, 1, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, 1, padding=1)
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)               # (B, 32, 14, 14)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)               # (B, 64, 7, 7)
                x = F.relu(self.fc1(torch.flatten(x, 1)))                # (B, 128)
                return F.log_softmax(self.fc2(x), dim=1)                 # (B, 10)

        return _Net()


def run_peer(form: str, seed: int, budget: float, device_name: str, peak: float, batch_size: int = 64,
             precision: str = "fp32") -> dict:
    """pytorch/examples mnist/main.py, adapted: Fashion-MNIST tensors instead of torchvision, a time budget.

    ``form="pytorch-examples"``: the recipe as written (batch 64, Adadelta lr 1.0, StepLR(1, 0.7), fp32).
    ``form="plain-loop"``: the same loop at ``batch_size`` and ``precision`` (bf16 autocast).
    """
    import contextlib

    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from neuralsight import config as C
    from neuralsight.engine.device import resolve_device
    from neuralsight.tasks import classify as T

    torch.manual_seed(seed)
    device = resolve_device(device_name)
    # The task's own split (the default preset's): the peer trains on our 55k training images and is scored once
    # on the 10k test images; it picks no checkpoint, so it never sees the validation images.
    data = T.load_data(C.build(T.Config, preset="fashion").data, torch.device("cpu"))
    xtr, ytr = data.train.x.numpy()[:, 0], data.train.y.numpy()
    xte, yte = data.test.x.numpy()[:, 0], data.test.y.numpy()

    def tensors(x, y):  # ToTensor() + Normalize((0.1307,), (0.3081,)) as in the example
        x = (torch.from_numpy(x.copy()).float().div(255).unsqueeze(1) - 0.1307) / 0.3081
        return TensorDataset(x, torch.from_numpy(y))

    train_loader = DataLoader(tensors(xtr, ytr), batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(tensors(xte, yte), batch_size=1000)
    model = Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    state = {"batches": iter(train_loader), "epoch": 0, "images": 0}
    model.train()

    def step(fraction):
        try:
            data, target = next(state["batches"])
        except StopIteration:                       # an epoch ended: the example steps its scheduler
            scheduler.step()
            state["epoch"] += 1
            state["batches"] = iter(train_loader)
            data, target = next(state["batches"])
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        with autocast:
            loss = F.nll_loss(model(data).float(), target)
        loss.backward()
        optimizer.step()
        state["images"] += len(data)

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    loop = common.timed_loop(step, budget, synchronize=sync)
    model.eval()
    correct = 0
    with torch.no_grad(), autocast:
        for data, target in test_loader:
            correct += (model(data.to(device)).argmax(1) == target.to(device)).sum().item()
    items_per_second = state["images"] / loop["train_seconds"]
    flops = common.training_flops_per_item(model, [torch.zeros(8, 1, 28, 28, device=device)],
                                           lambda out: F.nll_loss(out.float(), torch.zeros(8, dtype=torch.long,
                                                                                           device=device)))
    return common.peer_run(form, seed, loop, correct / len(test_loader.dataset), "test_acc",
                           throughput=items_per_second, train_images=len(ytr),
                           epochs=state["epoch"], precision=precision, batch_size=batch_size,
                           params=sum(p.numel() for p in model.parameters()),
                           **common.flops_utilisation(flops, items_per_second, peak))


def main() -> None:
    p = common.parser(__doc__, COMPARES)
    p.add_argument("--budget", type=float, default=None, help="training seconds of ours (default: 120 CPU, 10 GPU)")
    p.add_argument("--best-budget", type=float, default=120.0, help="training seconds for fashion-best")
    p.add_argument("--presets", default=None,
                   help="comma list from fashion,lecture,fashion-best (default: fashion,lecture; +fashion-best on GPU)")
    p.add_argument("--no-peers", action="store_true", help="ours only (no ratio targets)")
    p.add_argument("--no-probe", action="store_true", help="skip the precision / channels_last step-time probe")
    p.add_argument("--quick-budget", type=float, default=None,
                   help="--max-time of the --quick runs (default: the quick preset's own 45 s)")
    p.add_argument("--no-quick", action="store_true", help="skip the --quick runs (quick_test_acc)")
    p.add_argument("--photos", type=Path, default=None,
                   help="the fashion-photos folder (default: $NEURALSIGHT_DATA/fashion-photos or ../shared/datasets)")
    p.add_argument("--set", action="append", default=[], dest="overrides", help="config override for our runs")
    args = p.parse_args()
    photos_dir = find_photos(args.photos)

    from neuralsight.engine.device import cpu_has_bf16, resolve_device

    device = resolve_device(args.device)
    bench = common.Benchmark("fashion_mnist", args, device)
    gpu = device.type == "cuda"
    budget = args.budget or (10.0 if gpu else NOMINAL_CPU)
    presets = (args.presets or ("fashion,lecture,fashion-best" if gpu else "fashion,lecture")).split(",")
    bf16 = gpu or cpu_has_bf16()
    peak = common.matmul_peak(device.type, "bfloat16" if bf16 else "float32")
    print(f"matmul peak: {peak['flops_per_second'] / 1e9:.0f} GFLOP/s ({peak['dtype']})", flush=True)
    probe = {}
    if not args.no_probe:
        for precision in ("fp32", "bf16") if bf16 else ("fp32",):
            for cl in (False, True):
                key = f"{precision}{'+channels_last' if cl else ''}"
                sec = probe_step_time("fashion", args.device, [f'train.precision="{precision}"',
                                                               f"train.channels_last={'true' if cl else 'false'}"])
                probe[key] = {"step_seconds": round(sec, 5), "images_per_second": round(256 / sec, 1)}
                print(f"probe {key}: {256 / sec:.0f} img/s", flush=True)
    runs: list[dict] = []
    photos = []
    with tempfile.TemporaryDirectory(prefix="bench-fashion-") as tmp:
        for preset in presets:
            b = args.best_budget if preset == "fashion-best" else budget
            for seed in range(args.seeds):
                r = run_ours(preset, seed, b, args.device, args.overrides, peak["flops_per_second"], Path(tmp))
                run_dir = Path(r.pop("run_dir"))
                runs.append(r)
                print(f"{preset} seed {seed}: test acc {r['value']:.4f}, {r['train_seconds']:.1f} s trained, "
                      f"{r['items_per_second']:.0f} img/s, MFU {r['flops_utilisation']:.1%}, {r['precision']}",
                      flush=True)
                if preset == "fashion" and photos_dir is not None:
                    r.update(real_photos(run_dir, photos_dir))
                    photos.append(r)
                    print(f"  real photos: {r['real_photos_acc']:.4f} of {r['real_photos_n']}", flush=True)
        quick = []
        if not args.no_quick:
            for seed in range(args.seeds):
                r = common.run_ours("classify", seed, args.quick_budget, preset="fashion", name="fashion-quick",
                                    device=args.device, overrides=args.overrides, args=["--quick"])
                r["throughput"] = r["items_per_second"]
                runs.append(r)
                quick.append(r)
                print(f"fashion --quick seed {seed}: test acc {r['value']:.4f} in {r['train_seconds']:.1f} s",
                      flush=True)

    def of(name: str) -> list[dict]:
        return [r for r in runs if r["name"] == name]

    nominal = 10.0 if gpu else NOMINAL_CPU
    targets = []
    if gpu:
        targets.append(common.target_from_runs(f"gpu_acc_within_{budget:g}s", ">= 0.95", of("fashion")))
        if "fashion-best" in presets:
            targets.append(common.target_from_runs("gpu_best_preset_acc", ">= 0.96", of("fashion-best")))
    elif "fashion" in presets:
        targets.append(common.at_budget(common.target_from_runs("test_acc_120s", ">= 0.930", of("fashion")),
                                        nominal, budget))
    else:
        targets.append(common.not_run("test_acc_120s", ">= 0.930", "fashion not in --presets"))
    ratio = ("acc_ratio_vs_plain_loop_equal_time", ">= 1.005")
    if not args.no_peers and "fashion" in presets:
        equal = common.median([r["train_seconds"] for r in of("fashion")])
        for seed in range(args.seeds):
            runs.append(run_peer("pytorch-examples", seed, equal, args.device, peak["flops_per_second"]))
            print(f"pytorch-examples seed {seed}: test acc {runs[-1]['value']:.4f}", flush=True)
        targets.append(common.at_budget(common.ratio_target(*ratio, of("fashion"), of("pytorch-examples")),
                                        nominal, budget))
    else:
        targets.append(common.not_run(*ratio, "--no-peers" if args.no_peers else "fashion not in --presets"))
    if not args.no_peers and "lecture" in presets:
        equal = common.median([r["train_seconds"] for r in of("lecture")])
        precision = of("lecture")[0]["precision"] if of("lecture")[0]["precision"] in ("fp32", "bf16") else "fp32"
        for seed in range(args.seeds):
            runs.append(run_peer("plain-loop", seed, equal, args.device, peak["flops_per_second"],
                                 batch_size=128, precision=precision))
            print(f"plain-loop seed {seed}: {runs[-1]['items_per_second']:.0f} img/s", flush=True)
        targets.append(common.ratio_target("throughput_ratio_engine_vs_plain_loop_same_cnn", ">= 1.0",
                                           of("lecture"), of("plain-loop"), key="items_per_second"))
    if quick:
        targets.append(common.at_budget(common.target_from_runs("quick_test_acc", ">= 0.87", quick), None,
                                        args.quick_budget, what="--quick with --max-time"))
    else:
        targets.append(common.not_run("quick_test_acc", ">= 0.87", "--no-quick"))
    if photos:
        targets.append(common.at_budget(common.target_from_runs("real_photos_acc", ">= 0.70", photos,
                                                                key="real_photos_acc",
                                                                evaluated_by="neuralsight predict RUN PHOTOS --json"),
                                        nominal, budget))
    else:
        targets.append(common.not_run("real_photos_acc", ">= 0.70", "no fashion-photos folder or fashion not run"))
    path = bench.write(targets, runs, budget_seconds=budget, nominal_budget_seconds=nominal,
                       quick_budget_seconds=args.quick_budget, precision_probe=probe, matmul_peak=peak,
                       split="train 55,000 / val 5,000 (seeded, picks our checkpoint) / test 10,000 (scored once); "
                             "the peers train on the same 55,000 and are scored once on test",
                       real_photos={"folder": str(photos_dir) if photos_dir else None,
                                    "protocol": "the default-preset run of each seed, `neuralsight predict RUN "
                                                "FOLDER --json` (grey, 28x28, auto inversion), top-1 against "
                                                "labels.csv (9 classes, no ankle boots)"})
    for t in targets:
        print(f"{t['name']}: {t['measured']} (target {t['target']}) {'MET' if t['met'] else 'not met'}"
              + (f" [{t['reason']}]" if t.get("reason") else ""))
    print(f"wrote {path}")

if __name__ == "__main__":
    common.main(main)

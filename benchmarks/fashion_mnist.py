"""Fashion-MNIST: our default preset against the pytorch/examples recipe, test accuracy at equal training time.

Runs, each for ``--seeds`` seeds:

- ``fashion`` (ours): ``neuralsight train classify --preset fashion --max-time BUDGET --seed N``, what a
  user gets (the ``fast`` CNN, uint8 data on the device, on-device augmentation, one-cycle schedule);
- ``lecture`` (ours): the lecture's CNN through the same command (``--preset lecture``);
- ``pytorch-examples`` (peer): pytorch/examples ``mnist/main.py`` as a user writes it (DataLoader over
  float tensors, batch 64, Adadelta lr 1.0, StepLR 0.7, fp32) with the lecture's CNN;
- ``plain-loop`` (peer): the same loop at the lecture preset's batch size and our precision (bf16 autocast
  where the hardware has it): the engine-speed ratio against ``lecture``;
- ``fashion-best`` (GPU by default): the ``best`` preset with a longer budget.

Each peer trains for the median training seconds of the runs of ours it is compared with, so "equal
time" holds within 5 % (recorded). Training seconds exclude evaluation for ours and for the peers.
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


def probe_step_time(preset: str, device_name: str, overrides: list[str], steps: int = 20) -> float:
    """Seconds per optimizer step of ``preset`` on this machine now (after 5 warm-up steps)."""
    import torch

    from neuralsight import config as C
    from neuralsight.engine.trainer import build_optimizer, setup
    from neuralsight.tasks import classify as T

    cfg = C.build(T.Config, preset=preset, overrides=[f'train.device="{device_name}"', *overrides])
    env = setup(cfg.train)
    data = T.load_data(cfg.data, env.device)
    task = T.ClassifyTask(cfg, data, env.device)
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

    from neuralsight.data.catalog import locate
    from neuralsight.data.idx import load_mnist_split
    from neuralsight.engine.device import resolve_device

    torch.manual_seed(seed)
    device = resolve_device(device_name)
    folder = locate("fashion-mnist")
    xtr, ytr = load_mnist_split(folder, "train")
    xte, yte = load_mnist_split(folder, "test")

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
                           throughput=items_per_second,
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
    p.add_argument("--set", action="append", default=[], dest="overrides", help="config override for our runs")
    args = p.parse_args()

    from neuralsight.engine.device import cpu_has_bf16, resolve_device

    device = resolve_device(args.device)
    bench = common.Benchmark("fashion_mnist", args, device)
    gpu = device.type == "cuda"
    budget = args.budget or (10.0 if gpu else 120.0)
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
    with tempfile.TemporaryDirectory(prefix="bench-fashion-") as tmp:
        for preset in presets:
            b = args.best_budget if preset == "fashion-best" else budget
            for seed in range(args.seeds):
                r = run_ours(preset, seed, b, args.device, args.overrides, peak["flops_per_second"], Path(tmp))
                r.pop("run_dir")
                runs.append(r)
                print(f"{preset} seed {seed}: test acc {r['value']:.4f}, {r['train_seconds']:.1f} s trained, "
                      f"{r['items_per_second']:.0f} img/s, MFU {r['flops_utilisation']:.1%}, {r['precision']}",
                      flush=True)

    def of(name: str) -> list[dict]:
        return [r for r in runs if r["name"] == name]

    targets = []
    if gpu:
        targets.append(common.target_from_runs(f"gpu_acc_within_{budget:g}s", ">= 0.95", of("fashion")))
        if "fashion-best" in presets:
            targets.append(common.target_from_runs("gpu_best_preset_acc", ">= 0.96", of("fashion-best")))
    elif "fashion" in presets:
        targets.append(common.target_from_runs(f"test_acc_{budget:g}s", ">= 0.93", of("fashion")))
    if not args.no_peers:
        if "fashion" in presets:
            equal = common.median([r["train_seconds"] for r in of("fashion")])
            for seed in range(args.seeds):
                runs.append(run_peer("pytorch-examples", seed, equal, args.device, peak["flops_per_second"]))
                print(f"pytorch-examples seed {seed}: test acc {runs[-1]['value']:.4f}", flush=True)
            targets.append(common.ratio_target("acc_ratio_vs_plain_loop_equal_time", ">= 1.005", of("fashion"),
                                               of("pytorch-examples")))
        if "lecture" in presets:
            equal = common.median([r["train_seconds"] for r in of("lecture")])
            precision = of("lecture")[0]["precision"] if of("lecture")[0]["precision"] in ("fp32", "bf16") else "fp32"
            for seed in range(args.seeds):
                runs.append(run_peer("plain-loop", seed, equal, args.device, peak["flops_per_second"],
                                     batch_size=128, precision=precision))
                print(f"plain-loop seed {seed}: {runs[-1]['items_per_second']:.0f} img/s", flush=True)
            targets.append(common.ratio_target("throughput_ratio_engine_vs_plain_loop_same_cnn", ">= 1.0",
                                               of("lecture"), of("plain-loop"), key="items_per_second"))
    path = bench.write(targets, runs, budget_seconds=budget, precision_probe=probe, matmul_peak=peak)
    for t in targets:
        print(f"{t['name']}: {t['measured']} (target {t['target']}) {'MET' if t['met'] else 'not met'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    common.main(main)

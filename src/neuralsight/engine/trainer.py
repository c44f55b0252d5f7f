"""The one training loop every task uses.

A task hands the loop a small object (see :class:`TrainTask`): a model, how many training items there
are, how to turn a tensor of item indices into a batch on the device, how to compute the loss, and how
to evaluate. The loop owns everything else: device and precision, the optimizer and schedule, gradient
clipping, budgets (epochs, steps, wall clock), evaluation and early stopping, the progress bar,
``metrics.jsonl``, atomic checkpoints (last and best), exact resume, clean Ctrl-C/SIGTERM, and DDP.

Batches are drawn from a permutation seeded by ``(seed, epoch)`` and sharded by rank, so a resumed run
skips to the exact batch it stopped at and continues with the saved RNG state.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from neuralsight.config import TrainConfig
from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import distributed as dist
from neuralsight.engine.device import autocast, resolve_device, resolve_precision
from neuralsight.engine.runs import Run


class TrainTask(Protocol):
    """What a task gives the training loop."""

    model: Any                 # nn.Module, already on the device
    model_spec: dict           # {"name": registry name, "kwargs": constructor arguments}
    monitor: str               # metric from evaluate() that decides "best", e.g. "val_loss"
    monitor_mode: str          # "min" or "max"

    def train_size(self) -> int: ...
    def get_batch(self, indices) -> Any: ...                    # indices: LongTensor on CPU
    def training_step(self, model, batch) -> Any: ...           # loss tensor, or (loss, {name: tensor})
    def evaluate(self, model) -> dict[str, float]: ...          # called under no_grad, model.eval()


@dataclass
class Env:
    """Where and how training runs; made by :func:`setup` before the task builds data and model."""

    device: Any
    precision: str
    dist: dist.DistInfo
    seed: int

    def autocast(self):
        return autocast(self.device, self.precision)


@dataclass
class FitResult:
    step: int
    epoch: int
    best_step: int
    best_metric: float | None
    last_metrics: dict
    train_seconds: float
    wall_seconds: float
    items_per_second: float
    stopped_by: str                      # "budget", "steps", "epochs", "early_stop", "signal"
    history: list[dict] = field(default_factory=list)
    signal: int | None = None            # the signal number when stopped_by == "signal"

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "signal"

    def to_summary(self) -> dict:
        """The part of summary.json that describes how training went."""
        return {"step": self.step, "epoch": self.epoch, "best_step": self.best_step,
                "best_metric": self.best_metric, "train_seconds": round(self.train_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3), "items_per_second": round(self.items_per_second, 2),
                "stopped_by": self.stopped_by, "signal": self.signal}


def seed_everything(seed: int, deterministic: bool = False) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # Set both ways, so one run's choice never leaks into the next run in the same process.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def setup(cfg: TrainConfig) -> Env:
    """Pick device and precision, initialise DDP under torchrun, set threads and seeds."""
    import torch

    info = dist.detect()
    if info.enabled and cfg.device in ("auto", "cuda") and torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist.init(info, device)
    seed_everything(cfg.seed, cfg.deterministic)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if not cfg.deterministic:
            torch.backends.cudnn.benchmark = True
    return Env(device=device, precision=resolve_precision(cfg.precision, device), dist=info, seed=cfg.seed)


def build_optimizer(model, cfg: TrainConfig):
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}
    return cls(groups, lr=cfg.lr, **fused)


def lr_at(cfg: TrainConfig, step: int, total_steps: int | None, budget_used: float = 0.0) -> tuple[float, float | None]:
    """Learning-rate multiplier (and one-cycle momentum) for the update that follows ``step`` updates.

    The schedule is a pure function of where training stands, so resume needs no scheduler state:

    - with a step horizon (``--steps`` or ``--epochs``), progress is ``step / total_steps``;
    - with only ``--max-time``, progress is the fraction of the wall-clock budget used. The number of
      steps a budget buys is unknown in advance (it depends on the machine and its load), so planning
      a step count would be a guess; a budget-fraction schedule always lands the cosine's end exactly
      on the deadline (the "budget-aware" schedules of Li et al., ICLR 2020).

    ``warmup < 1`` is a fraction of the progress, ``>= 1`` a step count (capped at half the horizon).
    Cosine decays to 2% of the peak; one-cycle follows torch's ``OneCycleLR`` (cosine annealing from
    lr/25 up to lr and down to lr/25e4, momentum 0.95 -> 0.85 -> 0.95).
    """
    if total_steps:
        progress = min(1.0, step / max(1, total_steps))
        warm_steps = int(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)
        warm_steps = min(warm_steps, total_steps // 2)
        warm_frac = warm_steps / max(1, total_steps)
    else:
        progress = min(1.0, budget_used / cfg.max_time) if cfg.max_time > 0 else 0.0
        warm_steps = int(cfg.warmup) if cfg.warmup >= 1 else 0
        warm_frac = min(0.5, cfg.warmup) if cfg.warmup < 1 else 0.0

    if cfg.schedule == "onecycle":
        pct = min(0.5, max(0.01, warm_frac or 0.25))
        # Phase ends as torch's OneCycleLR places them: step pct*T - 1 and step T - 1.
        x, end1, end2 = (step, pct * total_steps - 1, total_steps - 1) if total_steps else (progress, pct, 1.0)
        if x <= end1:
            t = x / max(1e-12, end1)
            return _cos_anneal(1 / 25, 1.0, t), _cos_anneal(0.95, 0.85, t)
        t = (x - end1) / max(1e-12, end2 - end1)
        return _cos_anneal(1.0, 1 / 25e4, t), _cos_anneal(0.85, 0.95, t)

    if warm_steps and step < warm_steps:
        return (step + 1) / warm_steps, None
    if warm_frac and not warm_steps and progress < warm_frac:
        return max(progress / warm_frac, 1e-3), None
    if cfg.schedule == "constant":
        return 1.0, None
    t = (progress - warm_frac) / max(1e-12, 1 - warm_frac)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, t)))), None


def _cos_anneal(start: float, end: float, t: float) -> float:
    return end + (start - end) / 2 * (1 + math.cos(math.pi * min(1.0, max(0.0, t))))


def apply_lr(optimizer, cfg: TrainConfig, multiplier: float, momentum: float | None) -> float:
    lr = cfg.lr * multiplier
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            elif group.get("momentum", 0) > 0:
                group["momentum"] = momentum
    return lr


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves at the next step boundary and returns."""

    def __init__(self):
        self.signal: int | None = None
        self._old: dict = {}

    def __enter__(self):
        if _main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C means "now"
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _better(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def fit(task: TrainTask, env: Env, cfg: TrainConfig, run: Run, config_dict: dict,
        resume: bool = False, on_evaluate=None) -> FitResult:
    """Train ``task.model`` under ``cfg``; write metrics and checkpoints into ``run``.

    Budgets: ``cfg.steps`` (if > 0) else ``cfg.epochs`` (if > 0) set the step horizon of the schedule;
    ``cfg.max_time`` is a wall-clock cap on top, or, given alone, the horizon itself (see :func:`lr_at`).
    Evaluation runs every ``cfg.eval_every`` steps (0: at each epoch end) and always once at the end;
    ``cfg.patience`` evaluations without improvement of ``task.monitor`` stop early.

    ``on_evaluate(model, step, metrics)`` runs on rank 0 after each evaluation (e.g. text samples).
    A SIGINT/SIGTERM makes the loop save ``last`` at the next step boundary and return with
    ``stopped_by="signal"``; ``resume=True`` continues from ``last`` exactly: same batches, same RNG
    draws, same learning rates, and an evaluation that was due when the signal came runs first.

    Under DDP the ranks agree on stopping (signal, budget) at logging steps through one all-reduce of a
    five-number tensor that also averages the loss, so there is no per-step object broadcast.
    """
    import torch

    device, info = env.device, env.dist
    model = task.model.to(device)
    if cfg.channels_last and getattr(task, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)

    n = task.train_size()
    if n < 1:
        raise ValueError("the task reports an empty training set")
    shard = n // info.world_size if info.enabled else n
    batch_size = min(cfg.batch_size, max(1, shard))
    steps_per_epoch = max(1, shard // batch_size)
    if cfg.steps > 0:
        total_steps: int | None = cfg.steps
    elif cfg.epochs > 0:
        total_steps = cfg.epochs * steps_per_epoch
    elif cfg.max_time > 0:
        total_steps = None  # time-bounded: the schedule follows the budget fraction
    else:
        total_steps = steps_per_epoch
    scaler = torch.amp.GradScaler(device.type) if env.precision == "fp16" else None

    step = epoch = step_in_epoch = 0
    best: float | None = None
    best_step = 0
    bad_evals = 0
    last_eval_step = -1
    prior_train_seconds = prior_elapsed = 0.0
    running_loss, running_n = 0.0, 0  # loss sum and count since the last train record (restored on resume)
    if resume:
        state = ckpt.read_state(run.checkpoints, "last")
        ckpt.load_weights(model, run.checkpoints, "last", device=device)
        blob = ckpt.load_training_state(run.checkpoints, "last", device="cpu")
        ckpt.check_consistent(run.checkpoints, "last", state, blob)
        optimizer.load_state_dict(blob["optimizer"])
        if scaler is not None and "scaler" in blob:
            scaler.load_state_dict(blob["scaler"])
        step, epoch, step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        best, best_step, bad_evals = state.get("best_metric"), state.get("best_step", 0), state.get("bad_evals", 0)
        last_eval_step = state.get("last_eval_step", -1)
        prior_train_seconds = state.get("train_seconds", 0.0)
        prior_elapsed = state.get("elapsed", 0.0)
        running_loss, running_n = state.get("running_loss", [0.0, 0])
        ckpt.set_rng_state(state.get("rng", {}), blob.get("rng", {}))
        run.truncate_metrics(step)  # records a crashed session wrote after this checkpoint

    train_model = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    history: list[dict] = []
    last_metrics: dict = dict(state.get("last_metrics", {})) if resume else {}
    t_start = time.perf_counter()
    train_seconds = prior_train_seconds
    items_seen, items_time = 0, 0.0          # whole session, for the result
    win_items, win_time = 0, 0.0             # since the last train record
    budget_used = prior_elapsed              # wall seconds of all sessions; synced across ranks under DDP
    stop_signal: int | None = None           # agreed across ranks
    stopped_by = ""

    def elapsed() -> float:
        return prior_elapsed + time.perf_counter() - t_start

    def state_dict() -> dict:
        return {"step": step, "epoch": epoch, "step_in_epoch": step_in_epoch, "best_metric": best,
                "best_step": best_step, "bad_evals": bad_evals, "last_eval_step": last_eval_step,
                "monitor": task.monitor, "monitor_mode": task.monitor_mode, "train_seconds": train_seconds,
                "elapsed": elapsed(), "running_loss": [float(running_loss), running_n], "config": config_dict,
                "last_metrics": last_metrics, "precision": env.precision, "device": str(device)}

    def save(tag: str) -> None:
        if run.writer:
            extra = {"scaler": scaler.state_dict()} if scaler is not None and tag == "last" else None
            ckpt.save(run.checkpoints, tag, model, task.model_spec, state_dict(),
                      optimizer if tag == "last" else None, extra=extra)

    def evaluate() -> None:
        nonlocal best, best_step, bad_evals, last_metrics, last_eval_step
        metrics: dict = {}
        if info.is_main:
            model.eval()
            with torch.no_grad(), env.autocast():
                metrics = {k: float(v) for k, v in task.evaluate(model).items()}
            model.train()
        metrics = dist.broadcast_object(metrics)
        last_metrics, last_eval_step = metrics, step
        record = {"kind": "eval", "step": step, "epoch": epoch, "time": round(elapsed(), 3), **metrics}
        run.log(record)
        history.append(record)
        value = metrics.get(task.monitor)
        if _better(value, best, task.monitor_mode):
            best, best_step, bad_evals = value, step, 0
            save("best")
        else:
            bad_evals += 1
        if info.is_main and on_evaluate is not None:
            model.eval()
            with torch.no_grad():
                on_evaluate(model, step, metrics)
            model.train()
        save("last")
        progress.update(step, metric=metrics.get(task.monitor), elapsed=elapsed())

    def poll(sync: bool, loss_sum: float = 0.0, loss_n: int = 0) -> float | None:
        """Update the stop signal and budget; under DDP only at sync points, where the ranks agree."""
        nonlocal stop_signal, budget_used
        if not info.enabled:
            stop_signal = stop.signal
            budget_used = elapsed()
            return loss_sum / loss_n if loss_n else None
        if not sync:
            return None
        import torch.distributed as tdist

        box = torch.tensor([loss_sum, float(loss_n), float(stop.signal == signal.SIGTERM),
                            float(stop.signal == signal.SIGINT), elapsed()], dtype=torch.float64, device=device)
        tdist.all_reduce(box)
        total = box.tolist()
        stop_signal = int(signal.SIGTERM) if total[2] else int(signal.SIGINT) if total[3] else None
        budget_used = total[4] / info.world_size
        return total[0] / total[1] if total[1] else None

    def log_train(lr: float, extra: dict) -> None:
        nonlocal running_loss, running_n, win_items, win_time
        mean_loss = poll(True, float(running_loss), running_n)  # the one host sync per record
        rec = {"kind": "train", "step": step, "epoch": epoch, "loss": mean_loss, "lr": lr,
               "items_per_s": round(win_items / max(win_time, 1e-9), 2), "time": round(elapsed(), 3)}
        rec.update({k: float(v) for k, v in extra.items()})
        run.log(rec)
        progress.update(step, loss=mean_loss, elapsed=budget_used)
        running_loss, running_n = 0.0, 0
        win_items, win_time = 0, 0.0

    lr, extra = cfg.lr, {}
    progress = _Progress(enabled=cfg.progress and info.is_main, total=total_steps, max_time=cfg.max_time,
                         monitor=task.monitor)
    model.train()
    multiplier, momentum = lr_at(cfg, step, total_steps, budget_used)
    with _StopFlag() as stop, progress:
        if not resume and getattr(task, "evaluate_at_start", False):
            evaluate()
        perm_epoch, batches = None, None
        while True:
            # Evaluations that are due at this step (also the one a signal postponed before a resume).
            if cfg.eval_every and step and step % cfg.eval_every == 0 and last_eval_step != step:
                evaluate()
                if cfg.patience and bad_evals >= cfg.patience:
                    stopped_by = "early_stop"
                    break
            if step_in_epoch >= steps_per_epoch:
                epoch += 1
                step_in_epoch = 0
                if not cfg.eval_every and last_eval_step != step:
                    evaluate()
                    if cfg.patience and bad_evals >= cfg.patience:
                        stopped_by = "early_stop"
                        break
            if stop_signal is not None:
                stopped_by = "signal"
                break
            if cfg.max_time > 0 and budget_used >= cfg.max_time:
                stopped_by = "budget"
                break
            if total_steps is not None and step >= total_steps:
                stopped_by = "steps" if cfg.steps > 0 else "epochs"
                break

            if perm_epoch != epoch:
                gen = torch.Generator().manual_seed(env.seed * 1_000_003 + epoch)
                perm = torch.randperm(n, generator=gen)
                if info.enabled:
                    perm = perm[info.rank::info.world_size][:shard]
                batches = perm[: steps_per_epoch * batch_size].view(steps_per_epoch, batch_size)
                perm_epoch = epoch

            t0 = time.perf_counter()
            lr = apply_lr(optimizer, cfg, multiplier, momentum)
            batch = task.get_batch(batches[step_in_epoch])
            with env.autocast():
                out = task.training_step(train_model, batch)
            loss, extra = out if isinstance(out, tuple) else (out, {})
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
            step += 1
            step_in_epoch += 1
            log_now = (step % cfg.log_every == 0 or step_in_epoch == steps_per_epoch
                       or (total_steps is not None and step >= total_steps))
            running_loss = running_loss + loss.detach().float()  # stays on the device until a record
            running_n += 1
            dt = time.perf_counter() - t0
            train_seconds += dt
            items_seen += batch_size * info.world_size
            items_time += dt
            win_items += batch_size * info.world_size
            win_time += dt

            if log_now:
                log_train(lr, extra)
            else:
                poll(False)
                progress.update(step, elapsed=budget_used)
            multiplier, momentum = lr_at(cfg, step, total_steps, budget_used)

            if stop_signal is not None:  # save at once; a due evaluation runs after --resume
                stopped_by = "signal"
                break

        if stopped_by == "signal":
            save("last")  # the partial loss window is in the state; resume logs it where it belongs
        else:
            if running_n:
                log_train(lr, extra)  # the steps since the last record (a budget stop falls anywhere)
            if last_eval_step != step:
                evaluate()  # every run ends evaluated, whatever stopped it
    wall = time.perf_counter() - t_start
    if info.enabled:
        _record_rank_agreement(model, run, info)
    return FitResult(step=step, epoch=epoch, best_step=best_step, best_metric=best, last_metrics=last_metrics,
                     train_seconds=train_seconds, wall_seconds=wall,
                     items_per_second=items_seen / max(items_time, 1e-9), stopped_by=stopped_by,
                     history=history, signal=stop_signal if stopped_by == "signal" else None)


def _record_rank_agreement(model, run: Run, info: dist.DistInfo) -> None:
    """Gather a checksum of every rank's weights; rank 0 records them so tests can see the ranks agreed."""
    import torch
    import torch.distributed as tdist

    with torch.no_grad():
        total = sum(float(p.double().sum()) for p in model.parameters())
    sums = [None] * info.world_size
    tdist.all_gather_object(sums, total)
    run.log({"kind": "ddp", "world_size": info.world_size, "param_checksums": sums})


class _Progress:
    """A rich progress bar showing step, loss and the monitored metric; silent when disabled."""

    def __init__(self, enabled: bool, total: int | None, max_time: float, monitor: str):
        self.enabled = enabled
        self.total = total
        self.max_time = max_time
        self.monitor = monitor
        self._progress = None
        self._task = None
        self._loss = None
        self._metric = None
        self._last = 0.0

    def __enter__(self):
        if not self.enabled:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[info]}"), transient=False)
        self._progress.__enter__()
        total = self.total
        if total is None and self.max_time:
            total = None
        self._task = self._progress.add_task("train", total=total, info="")
        return self

    def update(self, step: int, loss: float | None = None, metric: float | None = None, elapsed: float = 0.0):
        if self._progress is None:
            return
        now = time.perf_counter()
        if loss is None and metric is None and now - self._last < 0.1:
            return  # redraw at most ten times a second between records
        self._last = now
        if loss is not None:
            self._loss = loss
        if metric is not None:
            self._metric = metric
        parts = []
        if self._loss is not None:
            parts.append(f"loss {self._loss:.4f}")
        if self._metric is not None:
            parts.append(f"{self.monitor} {self._metric:.4f}")
        if self.max_time:
            parts.append(f"budget {elapsed:.0f}/{self.max_time:.0f}s")
        self._progress.update(self._task, completed=step, info="  ".join(parts))

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False

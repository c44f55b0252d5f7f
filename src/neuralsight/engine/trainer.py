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

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "signal"


def seed_everything(seed: int, deterministic: bool = False) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


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


def build_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    import torch

    total_steps = max(1, total_steps)
    if cfg.schedule == "onecycle":
        pct = min(0.5, max(0.01, cfg.warmup if cfg.warmup < 1 else cfg.warmup / total_steps))
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps + 1,
                                                   pct_start=pct)
    warm = int(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)
    warm = min(warm, total_steps // 2)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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

    ``on_evaluate(model, step, metrics)`` runs on rank 0 after each evaluation (e.g. text samples).
    Returns a :class:`FitResult`; a SIGINT/SIGTERM returns early with ``stopped_by="signal"`` after
    saving ``last``.
    """
    import torch

    device, info = env.device, env.dist
    model = task.model.to(device)
    if cfg.channels_last and getattr(task, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)

    n = task.train_size()
    shard = n // info.world_size if info.enabled else n
    batch_size = min(cfg.batch_size, max(1, shard))
    steps_per_epoch = max(1, shard // batch_size)
    if cfg.steps > 0:
        total_steps = cfg.steps
    elif cfg.epochs > 0:
        total_steps = cfg.epochs * steps_per_epoch
    elif cfg.max_time > 0:
        # Time-bounded only: plan the schedule for a generous horizon; the budget stops it.
        total_steps = 10**9
    else:
        total_steps = steps_per_epoch
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    scaler = torch.amp.GradScaler("cuda") if env.precision == "fp16" else None

    step = epoch = step_in_epoch = 0
    best: float | None = None
    best_step = 0
    bad_evals = 0
    prior_train_seconds = 0.0
    if resume:
        state = ckpt.read_state(run.checkpoints, "last")
        ckpt.load_weights(model, run.checkpoints, "last", device=device)
        blob = ckpt.load_training_state(run.checkpoints, "last", device="cpu")
        optimizer.load_state_dict(blob["optimizer"])
        if "scheduler" in blob:
            scheduler.load_state_dict(blob["scheduler"])
        step, epoch, step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        best, best_step, bad_evals = state.get("best_metric"), state.get("best_step", 0), state.get("bad_evals", 0)
        prior_train_seconds = state.get("train_seconds", 0.0)
        ckpt.set_rng_state(state.get("rng", {}), blob.get("rng", {}))

    train_model = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    history: list[dict] = []
    last_metrics: dict = {}
    t_start = time.perf_counter()
    train_seconds = prior_train_seconds
    items_seen = 0
    items_time = 0.0
    stopped_by = "steps" if cfg.steps > 0 else "epochs"

    def state_dict() -> dict:
        return {"step": step, "epoch": epoch, "step_in_epoch": step_in_epoch, "best_metric": best,
                "best_step": best_step, "bad_evals": bad_evals, "monitor": task.monitor,
                "monitor_mode": task.monitor_mode, "train_seconds": train_seconds, "config": config_dict,
                "last_metrics": last_metrics, "precision": env.precision, "device": str(device)}

    def save(tag: str) -> None:
        if run.writer:
            ckpt.save(run.checkpoints, tag, model, task.model_spec, state_dict(), optimizer, scheduler)

    def evaluate() -> dict:
        nonlocal best, best_step, bad_evals, last_metrics
        metrics: dict = {}
        if info.is_main:
            model.eval()
            with torch.no_grad(), env.autocast():
                metrics = {k: float(v) for k, v in task.evaluate(model).items()}
            model.train()
        metrics = dist.broadcast_object(metrics)
        last_metrics = metrics
        record = {"kind": "eval", "step": step, "epoch": epoch, "time": round(time.perf_counter() - t_start, 3),
                  **metrics}
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
        return metrics

    progress = _Progress(enabled=cfg.progress and info.is_main, total=total_steps if total_steps < 10**9 else None,
                         max_time=cfg.max_time, monitor=task.monitor)
    model.train()
    if step == 0 and not resume:
        evaluate_first = getattr(task, "evaluate_at_start", False)
        if evaluate_first:
            evaluate()
    running_loss = torch.zeros((), device=device)
    running_n = 0
    done = False
    with _StopFlag() as stop, progress:
        while not done:
            gen = torch.Generator().manual_seed(env.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen)
            if info.enabled:
                perm = perm[info.rank::info.world_size][:shard]
            batches = perm[: steps_per_epoch * batch_size].view(steps_per_epoch, batch_size)
            while step_in_epoch < steps_per_epoch:
                t0 = time.perf_counter()
                batch = task.get_batch(batches[step_in_epoch])
                with env.autocast():
                    out = task.training_step(train_model, batch)
                loss, extra = (out if isinstance(out, tuple) else (out, {}))
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                running_loss += loss.detach().float()
                running_n += 1
                step += 1
                step_in_epoch += 1
                dt = time.perf_counter() - t0
                train_seconds += dt
                items_seen += batch_size * info.world_size
                items_time += dt

                if step % cfg.log_every == 0 or step_in_epoch == steps_per_epoch:
                    mean_loss = dist.all_reduce_mean(float(running_loss.item()) / max(1, running_n), device)
                    now = time.perf_counter()
                    rec = {"kind": "train", "step": step, "epoch": epoch, "loss": mean_loss,
                           "lr": optimizer.param_groups[0]["lr"],
                           "items_per_s": items_seen / max(items_time, 1e-9),
                           "time": round(now - t_start, 3)}
                    rec.update({k: float(v) for k, v in extra.items()})
                    run.log(rec)
                    progress.update(step, loss=mean_loss, metric=last_metrics.get(task.monitor),
                                    elapsed=now - t_start)
                    running_loss.zero_()
                    running_n = 0
                else:
                    progress.update(step, elapsed=time.perf_counter() - t_start)

                # Decide to stop on rank 0 and share the decision so all ranks leave together.
                reason = None
                if stop.signal is not None:
                    reason = "signal"
                elif cfg.max_time > 0 and time.perf_counter() - t_start >= cfg.max_time:
                    reason = "budget"
                elif step >= total_steps:
                    reason = "steps" if cfg.steps > 0 else "epochs"
                if info.enabled:
                    reason = dist.broadcast_object(reason)
                if reason == "signal":
                    save("last")
                    done, stopped_by = True, "signal"
                    break
                evaluated = False
                if cfg.eval_every and step % cfg.eval_every == 0:
                    evaluate()
                    evaluated = True
                    if cfg.patience and bad_evals >= cfg.patience:
                        reason = "early_stop"
                if reason is not None:
                    if not evaluated:
                        evaluate()
                    done, stopped_by = True, reason
                    break
            if done:
                break
            # End of an epoch.
            epoch += 1
            step_in_epoch = 0
            if not cfg.eval_every:
                evaluate()
                if cfg.patience and bad_evals >= cfg.patience:
                    done, stopped_by = True, "early_stop"
    wall = time.perf_counter() - t_start
    if info.enabled:
        _record_rank_agreement(model, run, info)
    return FitResult(step=step, epoch=epoch, best_step=best_step, best_metric=best, last_metrics=last_metrics,
                     train_seconds=train_seconds, wall_seconds=wall,
                     items_per_second=items_seen / max(items_time, 1e-9), stopped_by=stopped_by,
                     history=history)


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

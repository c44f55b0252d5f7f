"""The one training loop every task uses.

A task hands the loop a small object (see :class:`TrainTask`): a model, how many training items there
are, how to turn a tensor of item indices into a batch on the device, how to compute the loss, and how
to evaluate. The loop owns everything else: device and precision, the optimizer and schedule, gradient
clipping, an average of the weights (``train.ema``), budgets (epochs, steps, wall clock), evaluation and
early stopping, progress (:mod:`neuralsight.engine.progress`), ``metrics.jsonl``, atomic checkpoints (last
and best), exact resume, clean Ctrl-C/SIGTERM, and DDP.

Batches are drawn from a permutation seeded by ``(seed, epoch)`` and sharded by rank, so a resumed run
skips to the exact batch it stopped at and continues with the saved RNG state.

The wall-clock budget ``train.max_time`` covers the loop: its training steps, its periodic evaluations with
their checkpoint saves and ``on_evaluate`` hooks, and the closing evaluation every run ends with; not the
set-up before :func:`fit` (data, model) nor the task's test evaluation after it. Before each step the loop
checks that the step and a closing evaluation still fit, from measured costs (see :class:`_Budget`), and
stops otherwise, so a run ends inside its budget: the overshoot is at most the error of those estimates.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from neuralsight.config import TrainConfig
from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import distributed as dist
from neuralsight.engine import progress
from neuralsight.engine.device import autocast, resolve_device, resolve_precision
from neuralsight.engine.runs import Run


class TrainTask(Protocol):
    """What a task gives the training loop.

    The four attributes without a value and the four methods are required. The attributes with a value
    are optional: a task that leaves one out gets the value written here (:func:`task_option` reads them).
    """

    model: Any                 # nn.Module, already on the device
    model_spec: dict           # {"name": registry name, "kwargs": constructor arguments}
    monitor: str               # metric from evaluate() that decides "best", e.g. "val_loss"
    monitor_mode: str          # "min" or "max"
    channels_last: bool = False      # a 4-D conv net that runs faster in channels_last (with train.channels_last)
    evaluate_at_start: bool = False  # evaluate once before the first step (a fresh run only, not on resume)
    item_unit: str = "items"         # what one training index is, for throughput: "images", "windows", "patches"
    metric_units: Mapping[str, str] = MappingProxyType({})  # units shown after metrics: {"val_loss": "nats/char"}

    def train_size(self) -> int: ...
    def get_batch(self, indices) -> Any: ...                    # indices: LongTensor on CPU
    def training_step(self, model, batch) -> Any: ...           # loss tensor, or (loss, {name: tensor})
    def evaluate(self, model) -> dict[str, float]: ...          # called under no_grad, model.eval()


def task_option(task, name: str):
    """An optional :class:`TrainTask` attribute: the task's own, else the protocol's default."""
    return getattr(task, name, getattr(TrainTask, name))


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
    item_unit: str = "items"             # what items_per_second counts (the task's item_unit)
    metric_units: dict = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "signal"

    def to_summary(self) -> dict:
        """The ``fit`` part of ``summary.json``: how the training loop ended, and the units of its numbers."""
        return {"step": self.step, "epoch": self.epoch, "best_step": self.best_step,
                "best_metric": self.best_metric, "train_seconds": round(self.train_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3), "items_per_second": round(self.items_per_second, 2),
                "stopped_by": self.stopped_by, "signal": self.signal, "item_unit": self.item_unit,
                "metric_units": dict(self.metric_units)}


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
    The cap covers the loop with its evaluations and saves, and the run stops early enough that its
    closing evaluation ends inside it (the module docstring states the rule).
    Evaluation runs every ``cfg.eval_every`` steps (0: at each epoch end) and always once at the end;
    ``cfg.patience`` evaluations without improvement of ``task.monitor`` stop early. With ``cfg.ema`` every
    evaluation, the ``best`` checkpoint and ``on_evaluate`` see the averaged weights, and the model holds them
    when fit returns; ``last`` keeps the trained weights and the average beside the optimizer state.

    ``on_evaluate(model, step, metrics)`` runs on rank 0 after each evaluation (e.g. text samples).
    A SIGINT/SIGTERM makes the loop save ``last`` at the next step boundary and return with
    ``stopped_by="signal"``; ``resume=True`` continues from ``last`` exactly: same batches, same RNG
    draws, same learning rates, same weight average, and an evaluation that was due when the signal came
    runs first.

    Under DDP the ranks agree on stopping (signal, budget) at logging steps through one all-reduce of a
    five-number tensor that also averages the loss, so there is no per-step object broadcast; with a time
    budget the same all-reduce also follows each evaluation, so the ranks agree on what it cost.
    """
    return _Fit(task, env, cfg, run, config_dict, on_evaluate).train(resume)


def step_horizon(cfg: TrainConfig, steps_per_epoch: int) -> int | None:
    """The number of steps the schedule spans; None when only the time budget bounds the run."""
    if cfg.steps > 0:
        return cfg.steps
    if cfg.epochs > 0:
        return cfg.epochs * steps_per_epoch
    if cfg.max_time > 0:
        return None  # time-bounded: the schedule follows the budget fraction
    return steps_per_epoch


def epoch_batches(n: int, epoch: int, env: Env, shard: int, steps_per_epoch: int, batch_size: int):
    """The index batches of ``epoch``, shape (steps_per_epoch, batch_size): a seeded permutation, this rank's shard."""
    import torch

    gen = torch.Generator().manual_seed(env.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    if env.dist.enabled:
        perm = perm[env.dist.rank::env.dist.world_size][:shard]
    return perm[: steps_per_epoch * batch_size].view(steps_per_epoch, batch_size)


class _Fit:
    """One call of :func:`fit`: the loop's state as attributes, each of its jobs a method."""

    def __init__(self, task: TrainTask, env: Env, cfg: TrainConfig, run: Run, config_dict: dict, on_evaluate):
        import torch

        self.task, self.env, self.cfg, self.run = task, env, cfg, run
        self.config_dict, self.on_evaluate = config_dict, on_evaluate
        self.device, self.info = env.device, env.dist
        model = task.model.to(self.device)
        if cfg.channels_last and task_option(task, "channels_last"):
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = build_optimizer(model, cfg)

        self.n = task.train_size()
        if self.n < 1:
            raise ValueError("the task reports an empty training set")
        self.shard = self.n // self.info.world_size if self.info.enabled else self.n
        self.batch_size = min(cfg.batch_size, max(1, self.shard))
        self.steps_per_epoch = max(1, self.shard // self.batch_size)
        self.total_steps = step_horizon(cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type) if env.precision == "fp16" else None
        self.ema = None
        self.budget = _Budget(cfg.max_time)

        # What a checkpoint saves and a resume restores.
        self.step = self.epoch = self.step_in_epoch = 0
        self.best: float | None = None
        self.best_step = self.bad_evals = 0
        self.last_eval_step = -1
        self.train_seconds = self.prior_elapsed = 0.0
        self.running_loss, self.running_n = 0.0, 0  # loss sum and count since the last train record
        self.last_metrics: dict = {}

        # This session only.
        self.history: list[dict] = []
        self.items_seen, self.items_time = 0, 0.0  # whole session, for the result
        self.win_items, self.win_time = 0, 0.0     # since the last train record
        self.eval_items, self.eval_time = 0, 0.0   # since the last evaluation, for its progress line
        self.budget_used = 0.0                     # wall seconds of all sessions; synced across ranks under DDP
        self.stop_signal: int | None = None        # agreed across ranks
        self.lr, self.extra = cfg.lr, {}

    # ---- the run, start to end -----------------------------------------------------------------

    def train(self, resume: bool) -> FitResult:
        cfg, task = self.cfg, self.task
        blob = self.restore() if resume else None
        if cfg.ema > 0:
            from neuralsight.engine.ema import ModelEMA

            self.ema = ModelEMA(self.model, cfg.ema)
            if blob is not None and "ema" in blob:
                self.ema.load_state_dict(blob["ema"], where=str(self.run.checkpoints / "last.state.pt"))
        self.train_model = self.wrap()
        self.t_start = time.perf_counter()
        self.budget_used = self.prior_elapsed
        self.budget.synced(self.prior_elapsed, self.step)
        self.progress = progress.Training(
            enabled=cfg.progress and self.info.is_main, total=self.total_steps, max_time=cfg.max_time,
            monitor=task.monitor, item_unit=task_option(task, "item_unit"),
            metric_units=task_option(task, "metric_units"))
        self.model.train()
        multiplier, momentum = lr_at(cfg, self.step, self.total_steps, self.budget_used)
        with _StopFlag() as self.stop, self.progress:
            if not resume and task_option(task, "evaluate_at_start"):
                self.evaluate()
            stopped_by = self.loop(multiplier, momentum)
            if stopped_by == "signal":
                self.save("last")  # the partial loss window is in the state; resume logs it where it belongs
            else:
                if self.running_n:
                    self.log_train()  # the steps since the last record (a budget stop falls anywhere)
                if self.last_eval_step != self.step:
                    self.evaluate()  # every run ends evaluated, whatever stopped it
        wall = time.perf_counter() - self.t_start
        if self.ema is not None:
            self.ema.copy_to_model()
        if self.info.enabled:
            _record_rank_agreement(self.model, self.run, self.info)
        return FitResult(step=self.step, epoch=self.epoch, best_step=self.best_step, best_metric=self.best,
                         last_metrics=self.last_metrics, train_seconds=self.train_seconds, wall_seconds=wall,
                         items_per_second=self.items_seen / max(self.items_time, 1e-9), stopped_by=stopped_by,
                         history=self.history, signal=self.stop_signal if stopped_by == "signal" else None,
                         item_unit=task_option(task, "item_unit"), metric_units=dict(task_option(task, "metric_units")))

    def loop(self, multiplier: float, momentum: float | None) -> str:
        """Step until something stops the run; returns what did (FitResult.stopped_by)."""
        cfg = self.cfg
        batches, batches_epoch = None, None
        while True:
            # Evaluations that are due at this step (also the one a signal postponed before a resume).
            if cfg.eval_every and self.step and self.step % cfg.eval_every == 0 and self.last_eval_step != self.step:
                if self.evaluate_then_patience_ran_out():
                    return "early_stop"
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
                if not cfg.eval_every and self.last_eval_step != self.step:
                    if self.evaluate_then_patience_ran_out():
                        return "early_stop"
            if self.stop_signal is not None:
                return "signal"
            horizon_reached = self.total_steps is not None and self.step >= self.total_steps
            if cfg.max_time > 0:
                used = self.budget_now()
                step_cost = self.budget.step_cost(used, self.step, local=not self.info.enabled)
                if used >= cfg.max_time or (not horizon_reached and not self.budget.allows_step(used, step_cost)):
                    return "budget"
                if not horizon_reached and self.budget.wants_evaluation_timed(used):
                    if self.evaluate_then_patience_ran_out():
                        return "early_stop"
                    continue
            if horizon_reached:
                return "steps" if cfg.steps > 0 else "epochs"

            if batches_epoch != self.epoch:
                batches = epoch_batches(self.n, self.epoch, self.env, self.shard, self.steps_per_epoch, self.batch_size)
                batches_epoch = self.epoch
            self.train_step(batches[self.step_in_epoch], multiplier, momentum)
            multiplier, momentum = lr_at(cfg, self.step, self.total_steps, self.budget_used)
            if self.stop_signal is not None:  # save at once; a due evaluation runs after --resume
                return "signal"

    def train_step(self, indices, multiplier: float, momentum: float | None) -> None:
        import torch

        cfg, optimizer, scaler = self.cfg, self.optimizer, self.scaler
        t0 = time.perf_counter()
        self.lr = apply_lr(optimizer, cfg, multiplier, momentum)
        batch = self.task.get_batch(indices)
        with self.env.autocast():
            out = self.task.training_step(self.train_model, batch)
        loss, self.extra = out if isinstance(out, tuple) else (out, {})
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            optimizer.step()
        self.step += 1
        self.step_in_epoch += 1
        if self.ema is not None:
            self.ema.update(self.step)
        log_now = (self.step % cfg.log_every == 0 or self.step_in_epoch == self.steps_per_epoch
                   or (self.total_steps is not None and self.step >= self.total_steps))
        self.running_loss = self.running_loss + loss.detach().float()  # stays on the device until a record
        self.running_n += 1
        dt = time.perf_counter() - t0
        items = self.batch_size * self.info.world_size
        self.train_seconds += dt
        self.items_seen, self.items_time = self.items_seen + items, self.items_time + dt
        self.win_items, self.win_time = self.win_items + items, self.win_time + dt
        self.eval_items, self.eval_time = self.eval_items + items, self.eval_time + dt
        if log_now:
            self.log_train()
        else:
            self.poll()
            self.progress.step(self.step, elapsed=self.budget_used)

    # ---- evaluation, records, checkpoints ---------------------------------------------------------

    def evaluate_then_patience_ran_out(self) -> bool:
        self.evaluate()
        return bool(self.cfg.patience and self.bad_evals >= self.cfg.patience)

    def evaluate(self) -> None:
        import contextlib

        import torch

        task, info, model = self.task, self.info, self.model
        before = self.budget_now() if info.enabled else self.elapsed()
        metrics: dict = {}
        averaged = self.ema.applied() if self.ema is not None and info.is_main else contextlib.nullcontext()
        with averaged:  # evaluation, the best checkpoint and on_evaluate see the averaged weights
            if info.is_main:
                model.eval()
                with torch.no_grad(), self.env.autocast():
                    metrics = {k: float(v) for k, v in task.evaluate(model).items()}
                model.train()
            metrics = dist.broadcast_object(metrics)
            self.last_metrics, self.last_eval_step = metrics, self.step
            record = {"kind": "eval", "step": self.step, "epoch": self.epoch, "time": round(self.elapsed(), 3),
                      **metrics}
            self.run.log(record)
            self.history.append(record)
            value = metrics.get(task.monitor)
            improved = _better(value, self.best, task.monitor_mode)
            if improved:
                self.best, self.best_step, self.bad_evals = value, self.step, 0
                self.save("best")
            else:
                self.bad_evals += 1
            if info.is_main and self.on_evaluate is not None:
                model.eval()
                with torch.no_grad():
                    self.on_evaluate(model, self.step, metrics)
                model.train()
        self.save("last")
        if not info.enabled:
            self.budget.evaluated(before, self.elapsed(), self.step)
        elif self.cfg.max_time > 0:  # the ranks agree on what the evaluation cost before any decides on it
            self._all_reduce()
            self.budget.evaluated(before, self.budget_used, self.step)
        self.progress.evaluated(self.step, self.epoch, metrics, best=improved, elapsed=self.elapsed(),
                                items=self.eval_items, items_seconds=self.eval_time)
        self.eval_items, self.eval_time = 0, 0.0

    def log_train(self) -> None:
        mean_loss = self.sync(float(self.running_loss), self.running_n)  # the one host sync per record
        if mean_loss is not None and not math.isfinite(mean_loss):
            from neuralsight.errors import TrainingDiverged

            raise TrainingDiverged(
                f"training diverged: the mean training loss of steps {self.step - self.running_n + 1}-{self.step} "
                f"is {mean_loss} ({self.env.precision}, lr {self.lr:.3g}); checkpoints up to the last evaluation "
                f"are kept in {self.run.path}", "lower train.lr, set train.grad_clip, or try --precision fp32")
        rec = {"kind": "train", "step": self.step, "epoch": self.epoch, "loss": mean_loss, "lr": self.lr,
               "items_per_s": round(self.win_items / max(self.win_time, 1e-9), 2), "time": round(self.elapsed(), 3)}
        rec.update({k: float(v) for k, v in self.extra.items()})
        self.run.log(rec)
        self.progress.step(self.step, elapsed=self.budget_used, loss=mean_loss, items=self.win_items,
                           items_seconds=self.win_time)
        self.running_loss, self.running_n = 0.0, 0
        self.win_items, self.win_time = 0, 0.0

    def state_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "best_metric": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
                "last_eval_step": self.last_eval_step, "monitor": self.task.monitor,
                "monitor_mode": self.task.monitor_mode, "train_seconds": self.train_seconds,
                "elapsed": self.elapsed(), "running_loss": [float(self.running_loss), self.running_n],
                "config": self.config_dict, "last_metrics": self.last_metrics, "precision": self.env.precision,
                "device": str(self.device), "budget": self.budget.state()}

    def save(self, tag: str) -> None:
        if not self.run.writer:
            return
        extra = {}
        if tag == "last" and self.scaler is not None:
            extra["scaler"] = self.scaler.state_dict()
        if tag == "last" and self.ema is not None:
            extra["ema"] = self.ema.state_dict()
        ckpt.save(self.run.checkpoints, tag, self.model, self.task.model_spec, self.state_dict(),
                  self.optimizer if tag == "last" else None, extra=extra or None)

    def restore(self) -> dict:
        """Load ``last``: weights, optimizer, scaler, counters, RNG; returns the training-state blob."""
        run = self.run
        state = ckpt.read_state(run.checkpoints, "last")
        ckpt.load_weights(self.model, run.checkpoints, "last", device=self.device)
        blob = ckpt.load_training_state(run.checkpoints, "last", device="cpu")
        ckpt.check_consistent(run.checkpoints, "last", state, blob)
        self.optimizer.load_state_dict(blob["optimizer"])
        if self.scaler is not None and "scaler" in blob:
            self.scaler.load_state_dict(blob["scaler"])
        self.step, self.epoch, self.step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        self.best, self.best_step = state.get("best_metric"), state.get("best_step", 0)
        self.bad_evals = state.get("bad_evals", 0)
        self.last_eval_step = state.get("last_eval_step", -1)
        self.train_seconds = state.get("train_seconds", 0.0)
        self.prior_elapsed = state.get("elapsed", 0.0)
        self.running_loss, self.running_n = state.get("running_loss", [0.0, 0])
        self.last_metrics = dict(state.get("last_metrics", {}))
        self.budget.load(state.get("budget") or {})
        ckpt.set_rng_state(state.get("rng", {}), blob.get("rng", {}))
        run.truncate_metrics(self.step)  # records a crashed session wrote after this checkpoint
        return blob

    def wrap(self):
        """The module the training step calls: DDP around the model under torchrun, compiled on request."""
        import torch

        train_model = self.model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device = self.device
            train_model = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if self.cfg.compile:
            train_model = torch.compile(train_model)
        return train_model

    # ---- clocks and agreement -----------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.prior_elapsed + time.perf_counter() - self.t_start

    def budget_now(self) -> float:
        """Budget used so far: this process's clock, or under DDP the agreed value projected over the steps since."""
        projected = self.budget.projected(self.step)
        return projected if self.info.enabled else max(self.elapsed(), projected)

    def poll(self) -> None:
        """Between records: a single process reads its clock and signal flag; DDP ranks wait for the next sync."""
        if not self.info.enabled:
            self.stop_signal = self.stop.signal
            self.budget_used = self.elapsed()

    def sync(self, loss_sum: float, loss_n: int) -> float | None:
        """A train record: update the stop signal and budget (agreed under DDP); returns the mean loss."""
        if not self.info.enabled:
            self.poll()
            mean = loss_sum / loss_n if loss_n else None
        else:
            mean = self._all_reduce(loss_sum, loss_n)
        self.budget.synced(self.budget_used, self.step)
        return mean

    def _all_reduce(self, loss_sum: float = 0.0, loss_n: int = 0) -> float | None:
        import torch
        import torch.distributed as tdist

        stop = self.stop.signal
        box = torch.tensor([loss_sum, float(loss_n), float(stop == signal.SIGTERM), float(stop == signal.SIGINT),
                            self.elapsed()], dtype=torch.float64, device=self.device)
        tdist.all_reduce(box)
        total = box.tolist()
        self.stop_signal = int(signal.SIGTERM) if total[2] else int(signal.SIGINT) if total[3] else None
        self.budget_used = total[4] / self.info.world_size
        return total[0] / total[1] if total[1] else None


class _Budget:
    """Measured costs of a step and an evaluation, and the rule that keeps a run inside ``train.max_time``.

    A step's cost is the mean wall time per step between the last two train records (host syncs, so
    asynchronous GPU work is counted where it completes); a single process also takes the mean of the
    window in progress when that is larger. An evaluation's cost is the wall time of the last one, with its
    checkpoint saves and hook. Both are saved in the checkpoint, so a resumed run starts with them. Under
    DDP every input to a decision is agreed across ranks (all-reduced clocks), so the ranks stop together.

    The rule: take a step only if ``used + step + evaluation < max_time``, so the closing evaluation fits
    after it. Until an evaluation has been timed nothing can be reserved for it, so a run that reaches half
    its budget without one evaluates there (an ordinary evaluation: a record, the best checkpoint, patience).
    """

    def __init__(self, max_time: float):
        self.max_time = max_time
        self.step_seconds = 0.0              # per step, over the last window between train records
        self.eval_seconds: float | None = None
        self.synced_at = 0.0                 # budget used at the last record or evaluation
        self.sync_step = 0

    def synced(self, used: float, step: int) -> None:
        if step > self.sync_step:
            self.step_seconds = max(0.0, used - self.synced_at) / (step - self.sync_step)
        self.synced_at, self.sync_step = used, step

    def evaluated(self, before: float, after: float, step: int) -> None:
        self.eval_seconds = max(0.0, after - before)
        self.synced_at, self.sync_step = after, step  # the next step window starts after the evaluation

    def projected(self, step: int) -> float:
        return self.synced_at + (step - self.sync_step) * self.step_seconds

    def step_cost(self, used: float, step: int, local: bool) -> float:
        if local and step > self.sync_step:
            return max(self.step_seconds, (used - self.synced_at) / (step - self.sync_step))
        return self.step_seconds

    def allows_step(self, used: float, step_cost: float) -> bool:
        return used + step_cost + (self.eval_seconds or 0.0) < self.max_time

    def wants_evaluation_timed(self, used: float) -> bool:
        return self.eval_seconds is None and used >= self.max_time / 2

    def state(self) -> dict:
        return {"step_seconds": self.step_seconds, "eval_seconds": self.eval_seconds}

    def load(self, state: dict) -> None:
        self.step_seconds = float(state.get("step_seconds", 0.0))
        eval_seconds = state.get("eval_seconds")
        self.eval_seconds = None if eval_seconds is None else float(eval_seconds)


def _record_rank_agreement(model, run: Run, info: dist.DistInfo) -> None:
    """Gather a checksum of every rank's weights; rank 0 records them so tests can see the ranks agreed."""
    import torch
    import torch.distributed as tdist

    with torch.no_grad():
        total = sum(float(p.double().sum()) for p in model.parameters())
    sums = [None] * info.world_size
    tdist.all_gather_object(sums, total)
    run.log({"kind": "ddp", "world_size": info.world_size, "param_checksums": sums})


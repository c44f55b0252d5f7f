"""The learning-rate range test (Smith, "Cyclical Learning Rates", 2017), as fastai's ``Learner.lr_find`` runs it.

Train from the task's current weights with a learning rate that grows exponentially, step ``i`` of ``N``
using ``start_lr * (end_lr / start_lr) ** (i / N)``; record each step's loss and its smoothed value (an
exponential average with ``beta = 0.98``, debiased by ``1 - beta ** count``, fastai's ``AvgSmoothLoss``); stop
when the smoothed loss exceeds four times its minimum (the loss diverged). Then restore the weights and the
random state, so training afterwards starts exactly where it would have without the test.

Two suggestions are read off the curve, as fastai defines them, on the points that remain after dropping the
first tenth of ``N`` and the last five (and everything from the first NaN):

- ``valley`` (fastai's default): the longest run of decreasing loss (the longest decreasing subsequence),
  and the point about two thirds of the way down it;
- ``steep``: where the loss falls fastest against ``log(lr)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured; ``suggestion`` is ``valley`` (None when too few points remained)."""

    lrs: list[float]
    losses: list[float]          # smoothed, as plotted by fastai
    raw_losses: list[float]
    suggestion: float | None
    valley: float | None
    steep: float | None
    stopped_by: str              # "diverged" or "steps"


def valley(lrs: list[float], losses: list[float]) -> int:
    """Index of fastai's ``valley`` suggestion: two thirds down the longest decreasing run of ``losses``."""
    n = len(losses)
    longest = [1] * n  # longest[i]: the longest decreasing subsequence that ends at i
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[max_end] < longest[i]:
                max_end = i
                max_start = max_end - longest[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def steep(lrs: list[float], losses: list[float]) -> int:
    """Index of fastai's ``steep`` suggestion: the most negative slope of loss against log(lr)."""
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return min(range(len(slopes)), key=slopes.__getitem__)


def suggestions(lrs: list[float], losses: list[float], num_steps: int) -> tuple[float | None, float | None]:
    """(valley, steep) learning rates from a recorded curve, on fastai's trimmed points; None when too few."""
    lrs, losses = lrs[num_steps // 10: -5], losses[num_steps // 10: -5]
    nan = next((i for i, v in enumerate(losses) if math.isnan(v)), None)
    if nan is not None:
        lrs, losses = lrs[:nan], losses[:nan]
    if len(lrs) < 2:
        return None, None
    return lrs[valley(lrs, losses)], lrs[steep(lrs, losses)]


def lr_find(task, env, cfg, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
            stop_div: bool = True, beta: float = 0.98) -> LRFinderResult:
    """Run the range test on ``task`` with the optimizer, precision, batch size and clipping of ``cfg``.

    Args:
        task: a :class:`~neuralsight.engine.trainer.TrainTask`; its model ends with the weights it had.
        env: from :func:`~neuralsight.engine.trainer.setup` (one process: the test is not sharded).
        cfg: the ``TrainConfig`` whose optimizer, weight decay, batch size, precision and grad_clip are used;
            its learning rate and schedule are replaced by the exponential sweep.
        start_lr, end_lr: the sweep, ``0 < start_lr < end_lr``.
        num_steps: steps of the sweep (at least 6, as fastai requires).
        stop_div: stop once the smoothed loss exceeds four times its minimum, or is not finite.
        beta: smoothing of the recorded loss.
    """
    import torch

    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine import progress
    from neuralsight.engine.trainer import build_optimizer, epoch_batches, task_option

    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if env.dist.enabled:
        raise ValueError("lr_find runs in one process; launch it without torchrun")
    num_steps = max(6, int(num_steps))
    n = task.train_size()
    if n < 1:
        raise ValueError("the task reports an empty training set")
    model = task.model.to(env.device)
    if cfg.channels_last and task_option(task, "channels_last"):
        model = model.to(memory_format=torch.channels_last)
    saved_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_rng = ckpt.rng_state()
    was_training = model.training
    optimizer = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(env.device.type) if env.precision == "fp16" else None
    batch_size = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch_size)

    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    average, best, stopped_by = 0.0, math.inf, "steps"
    model.train()
    try:
        batches, batches_epoch = None, None
        for i in progress.track(range(num_steps), "lr-find", unit="steps"):
            epoch = i // steps_per_epoch
            if batches_epoch != epoch:
                batches, batches_epoch = epoch_batches(n, epoch, env, n, steps_per_epoch, batch_size), epoch
            lr = start_lr * (end_lr / start_lr) ** (i / num_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = task.get_batch(batches[i % steps_per_epoch])
            with env.autocast():
                out = task.training_step(model, batch)
            loss = out[0] if isinstance(out, tuple) else out
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
            value = float(loss.detach())
            average = value + beta * (average - value)  # torch.lerp(value, average, beta)
            smoothed = average / (1 - beta ** (i + 1))
            lrs.append(lr)
            raw.append(value)
            smooth.append(smoothed)
            best = min(best, smoothed)
            if stop_div and (not math.isfinite(smoothed) or smoothed > 4 * best):
                stopped_by = "diverged"
                break
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.load_state_dict(saved_weights)
        ckpt.set_rng_state(*saved_rng)
        model.train(was_training)
    valley_lr, steep_lr = suggestions(lrs, smooth, num_steps)
    return LRFinderResult(lrs=lrs, losses=smooth, raw_losses=raw, suggestion=valley_lr, valley=valley_lr,
                          steep=steep_lr, stopped_by=stopped_by)

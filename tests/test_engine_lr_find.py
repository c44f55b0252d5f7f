"""The learning-rate range test: fastai's sweep, smoothing, stop rule and suggestions; the model left as found."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from engine_toy import Config
from toy_task import ToyTask

from neuralsight.engine import lr_find as lf
from neuralsight.engine import progress, trainer
from neuralsight.engine.distributed import DistInfo


@pytest.fixture(autouse=True)
def _quiet():
    progress.set_mode("off")
    yield
    progress.set_mode("auto")


def _setup(**train):
    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, precision="fp32", device="cpu", deterministic=True, **train)
    env = trainer.setup(cfg.train)
    return cfg, env, ToyTask(cfg, env.device)


def test_valley_is_two_thirds_down_the_longest_decreasing_run():
    lrs = [10.0 ** (i - 7) for i in range(8)]
    # Worked by hand with fastai's rule: the decreasing run 0..5 has length 6, so max_end = 5,
    # max_start = 5 - 6 = -1, sections = 2, index = -1 + 2 + 1 = 2.
    assert lf.valley(lrs, [5, 4.9, 4.5, 2.0, 1.9, 1.8, 3, 9]) == 2
    # Ten decreasing points: max_start = 9 - 10 = -1, sections = 10/3, index = -1 + 3 + 1 = 3.
    assert lf.valley(list(range(1, 14)), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 2, 3, 4]) == 3
    assert lf.valley(lrs, [1, 2, 3, 4, 5, 6, 7, 8]) == 0  # nothing decreases: the first point


def test_steep_is_the_fastest_fall_against_log_lr():
    lrs = [10.0 ** (i - 7) for i in range(8)]
    assert lf.steep(lrs, [5, 4.9, 4.5, 2.0, 1.9, 1.8, 3, 9]) == 2  # 4.5 -> 2.0 is the steepest drop
    # On an uneven grid the slope is per unit of log(lr), not per step.
    assert lf.steep([1.0, 10.0, 11.0, 1000.0], [4.0, 3.0, 2.9, 0.0]) == 1


def test_suggestions_use_fastais_trimmed_points_and_stop_at_nan():
    lrs = [1e-6 * 1.5 ** i for i in range(30)]
    losses = [10.0 - i for i in range(30)]
    valley_lr, steep_lr = lf.suggestions(lrs, losses, num_steps=30)
    kept = lrs[3:-5]  # the first tenth of 30 and the last five are dropped
    assert valley_lr == kept[lf.valley(kept, losses[3:-5])]
    assert steep_lr in kept
    losses[10] = math.nan
    valley_lr, _ = lf.suggestions(lrs, losses, num_steps=30)
    assert valley_lr in lrs[3:10]
    assert lf.suggestions(lrs[:6], losses[:6], num_steps=6) == (None, None)


def test_lr_find_sweeps_smooths_stops_on_divergence_and_restores_the_model():
    cfg, env, task = _setup(batch_size=32)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    result = lf.lr_find(task, env, cfg.train, start_lr=1e-5, end_lr=1e3, num_steps=80)

    assert result.stopped_by == "diverged" and 10 < len(result.lrs) < 80
    for i, lr in enumerate(result.lrs):
        assert lr == pytest.approx(1e-5 * (1e3 / 1e-5) ** (i / 80), rel=1e-12)
    average = 0.0
    for i, (raw, smooth) in enumerate(zip(result.raw_losses, result.losses)):
        average = 0.98 * average + 0.02 * raw
        assert smooth == pytest.approx(average / (1 - 0.98 ** (i + 1)), rel=1e-9)
    assert result.losses[-1] > 4 * min(result.losses[:-1])
    assert result.suggestion == result.valley and result.lrs[8] <= result.suggestion < result.lrs[-1]
    assert result.steep in result.lrs
    for name, value in task.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(torch.get_rng_state(), rng)  # the test leaves the random state as it found it


def test_lr_find_suggestion_trains_better_than_the_sweeps_ends(tmp_path):
    """The point of the test: the suggested rate is a usable one (here it beats both ends of the sweep)."""
    from neuralsight.engine import runs

    cfg, env, task = _setup(batch_size=32)
    suggested = lf.lr_find(task, env, cfg.train, start_lr=1e-6, end_lr=1e2, num_steps=100).suggestion
    val = {}
    for lr in (1e-6, suggested, 50.0):
        cfg, env, task = _setup(batch_size=32, lr=lr, steps=48, eval_every=0, schedule="constant", warmup=0)
        run = runs.create("toy", f"lr{lr}", root=tmp_path, stamp="s")
        val[lr] = trainer.fit(task, env, cfg.train, run, {}).last_metrics["val_loss"]
    assert val[suggested] < val[1e-6] and val[suggested] < val[50.0], val


def test_lr_find_refuses_bad_ranges_and_ddp():
    cfg, env, task = _setup()
    with pytest.raises(ValueError, match="0 < start_lr < end_lr"):
        lf.lr_find(task, env, cfg.train, start_lr=1.0, end_lr=0.1)
    ddp = trainer.Env(device=env.device, precision="fp32", dist=DistInfo(rank=0, world_size=2), seed=0)
    with pytest.raises(ValueError, match="one process"):
        lf.lr_find(task, ddp, cfg.train)

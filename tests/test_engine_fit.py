"""The training loop: schedules, budgets, evaluation, early stopping, exact resume, determinism."""

from __future__ import annotations

import dataclasses
import math
import os
import signal

import pytest
import torch
from engine_toy import Config
from toy_task import ToyTask

from neuralsight import io as nsio
from neuralsight.config import TrainConfig
from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import runs, trainer


def make(tmp_path, name="run", interrupt_at=None, **train):
    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, precision="fp32", deterministic=True, device="cpu", **train)
    env = trainer.setup(cfg.train)
    task = ToyTask(cfg, env.device) if interrupt_at is None else InterruptAt(cfg, env.device, interrupt_at)
    run = runs.create("toy", name, root=tmp_path, stamp="s")
    return cfg, env, task, run


class InterruptAt(ToyTask):
    """Sends itself SIGINT while building the batch of step ``at`` (0-based), like a user's Ctrl-C."""

    def __init__(self, cfg, device, at):
        super().__init__(cfg, device)
        self.at, self.calls = at, 0

    def get_batch(self, idx):
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        self.calls += 1
        return super().get_batch(idx)


# ---- schedules ---------------------------------------------------------------------------------

def test_onecycle_equals_torch_onecyclelr():
    cfg = TrainConfig(schedule="onecycle", lr=0.1, warmup=0.3, optimizer="adam")
    total = 50
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.3)
    for step in range(total):
        mult, mom = trainer.lr_at(cfg, step, total)
        assert math.isclose(cfg.lr * mult, opt.param_groups[0]["lr"], rel_tol=1e-9, abs_tol=1e-12), step
        assert math.isclose(mom, opt.param_groups[0]["betas"][0], rel_tol=1e-9), step
        opt.step()
        ref.step()


def test_cosine_warms_up_then_decays_to_two_percent():
    cfg = TrainConfig(schedule="cosine", warmup=10)
    lrs = [trainer.lr_at(cfg, s, 100)[0] for s in range(101)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[10] == pytest.approx(1.0) and lrs[100] == pytest.approx(0.02)


def test_time_budget_schedule_follows_the_budget_fraction():
    cfg = TrainConfig(schedule="cosine", warmup=0.1, steps=0, epochs=0, max_time=100)
    assert trainer.lr_at(cfg, 0, None, budget_used=5)[0] == pytest.approx(0.5)
    assert trainer.lr_at(cfg, 10**6, None, budget_used=55)[0] == pytest.approx(0.51)  # cos midpoint
    assert trainer.lr_at(cfg, 7, None, budget_used=100)[0] == pytest.approx(0.02)


def test_max_time_alone_stops_by_budget_with_a_decayed_lr_and_a_final_eval(tmp_path):
    cfg, env, task, run = make(tmp_path, epochs=0, steps=0, max_time=1.5, eval_every=0)
    result = trainer.fit(task, env, cfg.train, run, {})
    recs = runs.read_metrics(run.path)
    assert result.stopped_by == "budget"
    assert recs[-1]["kind"] == "eval" and recs[-1]["step"] == result.step
    assert [r for r in recs if r["kind"] == "train"][-1]["step"] == result.step  # the last window is logged
    train_lrs = [r["lr"] for r in recs if r["kind"] == "train"]
    assert train_lrs[-1] < 0.5 * cfg.train.lr  # the schedule really decayed within the budget
    assert (run.checkpoints / "last.safetensors").is_file() and (run.checkpoints / "best.json").is_file()


# ---- loop behaviour ---------------------------------------------------------------------------

def test_steps_budget_eval_every_and_logging(tmp_path):
    cfg, env, task, run = make(tmp_path, steps=23, eval_every=10, log_every=5)
    result = trainer.fit(task, env, cfg.train, run, {})
    recs = runs.read_metrics(run.path)
    assert result.step == 23 and result.stopped_by == "steps"
    assert [r["step"] for r in recs if r["kind"] == "eval"] == [10, 20, 23]  # every 10 and at the end
    train = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 16, 20, 23]  # every 5, each epoch end (16), the last
    assert all(r["items_per_s"] > 0 and math.isfinite(r["loss"]) for r in train)
    first, last = recs[[r["kind"] for r in recs].index("eval")]["val_loss"], result.last_metrics["val_loss"]
    assert last < first  # it learns


def test_early_stopping_after_patience_evaluations(tmp_path):
    cfg, env, task, run = make(tmp_path, steps=200, eval_every=2, patience=2, lr=0.0)  # lr 0: never improves
    result = trainer.fit(task, env, cfg.train, run, {})
    assert result.stopped_by == "early_stop"
    assert result.step == 6 and result.best_step == 2  # evals at 2 (best), 4, 6 -> two without improvement


def test_fp16_is_refused_on_cpu(tmp_path):
    from neuralsight.errors import UserError

    with pytest.raises(UserError, match="fp16"):
        trainer.setup(TrainConfig(device="cpu", precision="fp16"))


# ---- resume ----------------------------------------------------------------------------------

def _weights(run, tag="last"):
    from safetensors.torch import load_file

    return load_file(str(run.checkpoints / f"{tag}.safetensors"))


@pytest.mark.parametrize("at, eval_every, ema", [(21, 0, 0.0), (15, 0, 0.0), (9, 5, 0.0), (21, 0, 0.9), (9, 5, 0.95)],
                         ids=["mid-epoch", "epoch-end", "eval-due", "mid-epoch-ema", "eval-due-ema"])
def test_resume_after_signal_equals_uninterrupted(tmp_path, at, eval_every, ema):
    """A run stopped by SIGINT at step ``at`` and resumed ends with the same weights and metrics.

    Tolerance: weights and losses within 1e-6 (CPU, fp32, deterministic; in practice bit-equal).
    The toy model has dropout and its batches draw augmentation noise, so this also checks that the
    RNG states and the exact batch position are restored; with ``ema`` the evaluated metrics and the
    best checkpoint are the weight average's, so they also check that the average is restored exactly.
    """
    cfg, env, task, ref_run = make(tmp_path, "ref", epochs=3, eval_every=eval_every, log_every=4, ema=ema)
    reference = trainer.fit(task, env, cfg.train, ref_run, {})

    cfg, env, task, run = make(tmp_path, "cut", interrupt_at=at, epochs=3, eval_every=eval_every, log_every=4,
                               ema=ema)
    first = trainer.fit(task, env, cfg.train, run, {})
    assert first.stopped_by == "signal" and first.step == at + 1
    assert ckpt.read_state(run.checkpoints, "last")["step"] == at + 1

    cfg, env, task, _ = make(tmp_path, "unused", epochs=3, eval_every=eval_every, log_every=4, ema=ema)
    resumed = trainer.fit(task, env, cfg.train, run, {}, resume=True)
    assert resumed.step == reference.step == 48 and resumed.stopped_by == "epochs"

    for tag in ("last", "best"):
        ref_w, got_w = _weights(ref_run, tag), _weights(run, tag)
        for k in ref_w:
            torch.testing.assert_close(got_w[k], ref_w[k], atol=1e-6, rtol=0)
    if ema:
        ref_avg = ckpt.load_training_state(ref_run.checkpoints, "last")["ema"]
        got_avg = ckpt.load_training_state(run.checkpoints, "last")["ema"]
        for k in ref_avg:
            torch.testing.assert_close(got_avg[k], ref_avg[k], atol=1e-6, rtol=0)
    strip = [{k: v for k, v in r.items() if k not in ("time", "items_per_s")} for r in runs.read_metrics(ref_run.path)]
    got = [{k: v for k, v in r.items() if k not in ("time", "items_per_s")} for r in runs.read_metrics(run.path)]
    assert [(r["kind"], r["step"]) for r in got] == [(r["kind"], r["step"]) for r in strip]
    for a, b in zip(got, strip):
        for k, v in b.items():
            assert a[k] == pytest.approx(v, abs=1e-6), (k, a, b)
    assert resumed.best_step == reference.best_step


def test_resume_drops_records_logged_after_the_checkpoint(tmp_path):
    cfg, env, task, run = make(tmp_path, steps=12, eval_every=6, log_every=2)
    trainer.fit(task, env, cfg.train, run, {})
    # Pretend the process died at step 12 after logging, with the checkpoint still at step 6.
    state = ckpt.read_state(run.checkpoints, "last")
    assert state["step"] == 12
    run.log({"kind": "train", "step": 13, "loss": 1.0})
    state["step"] = 6
    nsio.atomic_write_json(run.checkpoints / "last.json", state)
    cfg, env, task, _ = make(tmp_path, "x", steps=12, eval_every=6, log_every=2)
    with pytest.raises(Exception, match="torn"):  # weights are from step 12, the state says 6
        trainer.fit(task, env, cfg.train, run, {}, resume=True)


def test_deterministic_runs_give_identical_metrics(tmp_path):
    out = []
    for name in ("a", "b"):
        cfg, env, task, run = make(tmp_path, name, steps=30, eval_every=10, log_every=5)
        trainer.fit(task, env, cfg.train, run, {})
        out.append([{k: v for k, v in r.items() if k not in ("time", "items_per_s")} for r in runs.read_metrics(run.path)])
    assert out[0] == out[1] and len(out[0]) > 5


def test_fp16_path_scales_clips_and_saves_the_scaler_state(tmp_path):
    """The GradScaler path (CUDA's fp16), exercised on CPU autocast so it is tested everywhere."""
    from neuralsight.engine.distributed import DistInfo

    cfg, env, task, run = make(tmp_path, steps=6, eval_every=3, log_every=2, grad_clip=0.5)
    env16 = trainer.Env(device=env.device, precision="fp16", dist=DistInfo(), seed=0)
    result = trainer.fit(task, env16, cfg.train, run, {})
    assert result.stopped_by == "steps" and math.isfinite(result.last_metrics["val_loss"])
    blob = ckpt.load_training_state(run.checkpoints, "last")
    assert blob["scaler"]["scale"] > 0
    cfg.train.steps = 8
    resumed = trainer.fit(ToyTask(cfg, env.device), env16, cfg.train, run, {}, resume=True)
    assert resumed.step == 8


# ---- the weight average (train.ema) -------------------------------------------------------------

class Recording(ToyTask):
    """Keeps the weights each training step starts from, to replay the average by hand."""

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.seen = []

    def training_step(self, model, batch):
        self.seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return super().training_step(model, batch)


def test_ema_is_what_evaluation_and_the_best_checkpoint_see(tmp_path):
    from neuralsight.engine.ema import decay_at

    cfg, env, _, run = make(tmp_path, steps=20, eval_every=20, log_every=5, ema=0.9)
    task = Recording(cfg, env.device)
    seen_in_eval = []
    result = trainer.fit(task, env, cfg.train, run, {},
                         on_evaluate=lambda model, step, m: seen_in_eval.append(dict(model.state_dict())))
    last = _weights(run, "last")
    trajectory = task.seen[1:] + [last]  # the weights after steps 1..20
    average = {k: v.clone() for k, v in task.seen[0].items()}
    for k, weights in enumerate(trajectory, start=1):
        d = decay_at(0.9, k)
        average = {name: d * average[name] + (1 - d) * weights[name] for name in average}
    best = _weights(run, "best")
    for name in average:
        torch.testing.assert_close(best[name], average[name], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(seen_in_eval[0][name], average[name], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(task.model.state_dict()[name], average[name], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(last["0.weight"], best["0.weight"])  # last keeps the trained weights
    task.model.eval()
    with torch.no_grad():
        assert result.last_metrics["val_loss"] == pytest.approx(task.evaluate(task.model)["val_loss"], rel=1e-6)


def test_ema_ramp_and_update_match_the_formula_with_buffers():
    from neuralsight.engine.ema import ModelEMA, decay_at

    assert decay_at(0.999, 1) == pytest.approx(2 / 11) and decay_at(0.999, 10**6) == 0.999
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model.head = torch.nn.Linear(4, 4, bias=False)
    model.tail = model.head  # a module reached twice is averaged once
    ema = ModelEMA(model, 0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.randn(8, 3))  # moves the BatchNorm statistics and its integer counter
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(num_updates=100)  # ramp (101/110) above 0.5: the decay is 0.5
    after = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied():
        inside = {k: v.clone() for k, v in model.state_dict().items()}
    for name, value in start.items():
        if value.is_floating_point():
            torch.testing.assert_close(inside[name], 0.5 * value + 0.5 * after[name])
        else:
            assert torch.equal(inside[name], after[name]) and int(after[name]) == 1  # copied, not averaged
    for name, value in model.state_dict().items():
        assert torch.equal(value, after[name])  # the trained weights are back
    assert sorted(ema.state_dict()) == sorted(dict(model.named_parameters()) | dict(model.named_buffers()))


def test_ema_of_another_model_is_refused(tmp_path):
    from neuralsight.engine.ema import ModelEMA
    from neuralsight.errors import CheckpointError

    saved = ModelEMA(torch.nn.Linear(3, 2), 0.9).state_dict()
    with pytest.raises(CheckpointError, match="does not fit the model"):
        ModelEMA(torch.nn.Linear(3, 4), 0.9).load_state_dict(saved)


def test_ema_decay_must_be_below_one():
    from neuralsight import config as C
    from neuralsight.errors import ConfigError

    assert C.from_dict(TrainConfig, {"ema": 0.999}).ema == 0.999
    with pytest.raises(ConfigError, match="train.ema' = 1.0 is too large"):
        C.from_dict(TrainConfig, {"ema": 1.0}, prefix="train.")


class NanAfter(ToyTask):
    """Its loss turns NaN from the 7th training step on, as a diverging run's does."""

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.calls = 0

    def training_step(self, model, batch):
        self.calls += 1
        loss = super().training_step(model, batch)
        return loss * float("nan") if self.calls >= 7 else loss


def test_a_loss_that_turns_nan_stops_the_run_with_one_clear_error(tmp_path):
    from neuralsight.errors import TrainingDiverged, UserError

    cfg, env, _, run = make(tmp_path, steps=40, eval_every=5, log_every=5)
    with pytest.raises(TrainingDiverged, match=r"training diverged: the mean training loss of steps 6-10 is nan") \
            as err:
        trainer.fit(NanAfter(cfg, env.device), env, cfg.train, run, {})
    assert isinstance(err.value, UserError) and "lower train.lr" in str(err.value)
    recs = runs.read_metrics(run.path)
    assert [r["step"] for r in recs if r["kind"] == "train"] == [5]        # no NaN record was written
    assert all(math.isfinite(r["loss"]) for r in recs if r["kind"] == "train")
    assert (run.checkpoints / "best.safetensors").is_file()               # the step-5 checkpoint is kept

"""``train.max_time`` stops on time: the loop with its evaluations and saves ends inside the budget (+2 %).

The toy task's steps and evaluations sleep known amounts, so the costs the loop measures are known, and
the test holds on a loaded machine: sleeping is not slowed down by other processes the way computing is.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import pytest
from engine_toy import Config
from toy_task import ToyTask

from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import runs, trainer

OVERSHOOT = 0.02


class Sleepy(ToyTask):
    """Each training step takes ``step_s`` and each evaluation ``eval_s`` seconds, on top of the toy's work."""

    def __init__(self, cfg, device, step_s=0.04, eval_s=0.25, at_start=False, interrupt_at=None):
        super().__init__(cfg, device)
        self.step_s, self.eval_s, self.evaluate_at_start = step_s, eval_s, at_start
        self.interrupt_at, self.calls = interrupt_at, 0

    def get_batch(self, idx):
        if self.calls == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        self.calls += 1
        return super().get_batch(idx)

    def training_step(self, model, batch):
        time.sleep(self.step_s)
        return super().training_step(model, batch)

    def evaluate(self, model):
        time.sleep(self.eval_s)
        return super().evaluate(model)


def _fit(tmp_path, name="run", resume_run=None, task_kwargs=None, **train):
    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, precision="fp32", device="cpu", **train)
    env = trainer.setup(cfg.train)
    task = Sleepy(cfg, env.device, **(task_kwargs or {}))
    run = resume_run or runs.create("toy", name, root=tmp_path, stamp="s")
    start = time.perf_counter()
    result = trainer.fit(task, env, cfg.train, run, {}, resume=resume_run is not None)
    return result, run, time.perf_counter() - start


@pytest.mark.parametrize("train, task_kwargs", [
    ({"epochs": 0, "steps": 0, "eval_every": 0}, {}),                   # evaluations at epoch ends (16 steps)
    ({"epochs": 0, "steps": 0, "eval_every": 25}, {"eval_s": 0.4}),     # every 25 steps, slower evaluations
    ({"epochs": 0, "steps": 0, "eval_every": 10_000}, {}),              # none due: timed at half the budget
    ({"epochs": 0, "steps": 0, "eval_every": 10_000}, {"at_start": True}),
    ({"steps": 10_000, "eval_every": 0}, {"step_s": 0.1}),              # a step horizon the budget cuts short
], ids=["epoch-evals", "slow-evals", "no-evals-due", "eval-at-start", "steps-cut"])
def test_budget_covers_the_loop_its_evaluations_and_saves(tmp_path, train, task_kwargs):
    budget = 3.0
    result, run, seconds = _fit(tmp_path, max_time=budget, task_kwargs=task_kwargs, **train)
    records = runs.read_metrics(run.path)
    assert result.stopped_by == "budget"
    assert records[-1]["kind"] == "eval" and records[-1]["step"] == result.step  # it ends evaluated
    assert seconds <= budget * (1 + OVERSHOOT), f"{seconds:.3f} s for a {budget} s budget"
    # ... and does not stop much earlier than it must: a step and an evaluation more would not have fit.
    step_s, eval_s = task_kwargs.get("step_s", 0.04), task_kwargs.get("eval_s", 0.25)
    assert seconds >= budget - 2 * (step_s + eval_s), f"{seconds:.3f} s: stopped too early"


def test_half_budget_evaluation_is_taken_only_when_no_evaluation_was_timed(tmp_path):
    result, run, _ = _fit(tmp_path, max_time=3.0, epochs=0, steps=0, eval_every=10_000)
    evals = [r for r in runs.read_metrics(run.path) if r["kind"] == "eval"]
    assert len(evals) == 2 and 1.5 <= evals[0]["time"] <= 1.5 + 0.25 + 0.1  # timed at half, then closing

    result, run, _ = _fit(tmp_path, "s", max_time=3.0, epochs=0, steps=0, eval_every=10_000,
                          task_kwargs={"at_start": True})
    assert [r["step"] for r in runs.read_metrics(run.path) if r["kind"] == "eval"] == [0, result.step]


def test_a_budget_that_does_not_bind_changes_nothing(tmp_path):
    result, run, _ = _fit(tmp_path, max_time=60.0, steps=20, eval_every=10, task_kwargs={"step_s": 0.0, "eval_s": 0.0})
    assert result.stopped_by == "steps" and result.step == 20
    assert [r["step"] for r in runs.read_metrics(run.path) if r["kind"] == "eval"] == [10, 20]


def test_budget_spans_resumed_sessions_with_the_measured_costs(tmp_path):
    budget = 3.0
    first, run, first_seconds = _fit(tmp_path, max_time=budget, epochs=0, steps=0, eval_every=0,
                                     task_kwargs={"interrupt_at": 30})
    assert first.stopped_by == "signal"
    saved = ckpt.read_state(run.checkpoints, "last")["budget"]
    assert saved["step_seconds"] == pytest.approx(0.04, abs=0.02) and saved["eval_seconds"] >= 0.25
    second, _, second_seconds = _fit(tmp_path, resume_run=run, max_time=budget, epochs=0, steps=0, eval_every=0)
    assert second.stopped_by == "budget"
    total = ckpt.read_state(run.checkpoints, "last")["elapsed"]
    assert budget - 2 * (0.04 + 0.25) <= total <= budget * (1 + OVERSHOOT)
    assert first_seconds + second_seconds <= budget * (1 + OVERSHOOT) + 0.1  # + the second session's set-up


def test_budget_rule_from_measured_costs():
    rule = trainer._Budget(max_time=10.0)
    assert rule.allows_step(used=9.9, step_cost=0.0)  # nothing measured yet: nothing reserved
    rule.synced(used=1.0, step=10)
    rule.synced(used=3.0, step=20)
    assert rule.step_seconds == pytest.approx(0.2) and rule.projected(25) == pytest.approx(4.0)
    assert rule.step_cost(used=5.0, step=25, local=True) == pytest.approx(0.4)  # this window is slower
    assert rule.step_cost(used=5.0, step=25, local=False) == pytest.approx(0.2)  # DDP: agreed values only
    assert rule.wants_evaluation_timed(used=5.0) and not rule.wants_evaluation_timed(used=4.9)
    rule.evaluated(before=5.0, after=6.5, step=25)
    assert rule.eval_seconds == pytest.approx(1.5) and not rule.wants_evaluation_timed(used=7.0)
    assert rule.projected(25) == pytest.approx(6.5)  # the next window starts after the evaluation
    assert rule.allows_step(used=8.2, step_cost=0.2) and not rule.allows_step(used=8.4, step_cost=0.2)


@pytest.mark.slow
def test_ddp_ranks_agree_on_the_budget_stop(tmp_path):
    """Two gloo ranks: each decision uses all-reduced clocks, so both stop at the same step, on time."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun not found beside the Python interpreter"
    root = tmp_path / "runs"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", str(Path(__file__).with_name("engine_toy.py")), "train",
         "toy", "--out", str(root), "--max-time", "3", "--device", "cpu", "--precision", "fp32",
         "--set", "train.log_every=4", "--set", "train.eval_every=50"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = root.glob("toy/*")
    summary = json.loads((run / "summary.json").read_text())["fit"]
    assert summary["stopped_by"] == "budget"
    state = ckpt.read_state(run / "checkpoints", "last")
    assert state["elapsed"] <= 3.0 * (1 + OVERSHOOT) and state["budget"]["eval_seconds"] is not None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-2]["kind"] == "eval" and records[-2]["step"] == summary["step"]  # then the ddp record
    sums = records[-1]["param_checksums"]
    assert sums[0] == pytest.approx(sums[1], abs=1e-9)  # the ranks stepped together to the end

"""SIGINT and SIGTERM sent to a real training process: it saves `last`, exits cleanly, and resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOY_CLI = Path(__file__).with_name("engine_toy.py")


def _wait_for_training(root: Path, proc: subprocess.Popen, timeout: float = 90.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for metrics in root.glob("toy/*/metrics.jsonl"):
            if '"kind": "train"' in metrics.read_text():
                return metrics.parent
        if proc.poll() is not None:
            raise AssertionError(f"training exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("training never started")


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_last_exits_cleanly_and_resumes(tmp_path, sig, code):
    root = tmp_path / "runs"
    base = [sys.executable, str(TOY_CLI), "train", "toy", "--precision", "fp32", "--device", "cpu",
            "--set", "train.log_every=1", "--set", "train.eval_every=100000"]
    proc = subprocess.Popen([*base, "--out", str(root), "--steps", "1000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = _wait_for_training(root, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "Resume with: neuralsight train toy --resume" in err

    # last.* is complete, loadable, and agrees with itself.
    from neuralsight.engine import checkpoint as ckpt

    state = ckpt.read_state(run_dir / "checkpoints", "last")
    blob = ckpt.load_training_state(run_dir / "checkpoints", "last")
    ckpt.check_consistent(run_dir / "checkpoints", "last", state, blob)
    stopped = state["step"]
    assert 0 < stopped < 1_000_000
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["fit"]["stopped_by"] == "signal"
    assert summary["fit"]["signal"] == int(sig)

    # Resume continues from that step to the new budget.
    done = subprocess.run([*base, "--resume", str(run_dir), "--steps", str(stopped + 7)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == list(range(1, stopped + 8))  # every step once: nothing lost, nothing repeated
    assert ckpt.read_state(run_dir / "checkpoints", "last")["step"] == stopped + 7
    assert json.loads((run_dir / "summary.json").read_text())["fit"]["stopped_by"] == "steps"

"""torchrun with two CPU processes (gloo): a complete run directory, written by rank 0 only, ranks agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOY_CLI = Path(__file__).resolve().parents[1] / "engine_toy.py"


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun not found beside the Python interpreter"
    root = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", str(TOY_CLI), "train", "toy", "--out", str(root),
         "--steps", "20", "--device", "cpu", "--precision", "fp32",
         "--set", "train.log_every=2", "--set", "train.eval_every=10"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    run_dirs = list(root.glob("toy/*"))
    assert len(run_dirs) == 1, run_dirs  # rank 1 created no second directory
    run = run_dirs[0]
    for rel in ("config.toml", "metrics.jsonl", "summary.json", "report.html", "figures/fit.png",
                "checkpoints/last.safetensors", "checkpoints/last.json", "checkpoints/last.state.pt",
                "checkpoints/best.safetensors", "checkpoints/best.json"):
        assert (run / rel).is_file(), rel
    assert not list(run.rglob("*.tmp")), "a temporary file was left behind"
    assert proc.stdout.count("report:") == 1  # only rank 0 speaks

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == list(range(2, 21, 2))  # one writer: every record exactly once
    assert [r["step"] for r in records if r["kind"] == "eval"] == [10, 20]
    ddp = [r for r in records if r["kind"] == "ddp"]
    assert len(ddp) == 1 and ddp[0]["world_size"] == 2
    sums = ddp[0]["param_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], abs=1e-9)  # the ranks hold the same weights

    summary = json.loads((run / "summary.json").read_text())
    assert summary["fit"]["step"] == 20 and summary["fit"]["stopped_by"] == "steps"
    # Each rank saw its own half of the data: 512 items / 2 ranks / batch 32 = 8 steps per epoch.
    assert [r["epoch"] for r in records if r["kind"] == "train"][:5] == [0, 0, 0, 0, 1]

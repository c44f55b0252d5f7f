"""Issue 10 item 2: a normal (non-editable) install can train. Build the wheel, install it outside the checkout,
and train classify for a few steps from another working directory: the presets must come from the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_ships_the_presets_and_trains_from_elsewhere(tmp_path):
    shared_data("fashion-mnist")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = wheels.glob("neuralsight-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "neuralsight/configs/fashion.toml" in names and "neuralsight/configs/pets.toml" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, not this checkout's src/
    where = subprocess.run([sys.executable, "-c", "import neuralsight; print(neuralsight.__file__)"], env=env,
                           cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(target), where
    res = subprocess.run([sys.executable, "-m", "neuralsight", "train", "classify", "--quick", "--steps", "3",
                          "--set", "data.train_limit=1000", "--set", "data.val_size=100", "--out", "runs",
                          "--no-progress"], env=env, cwd=work, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = (work / "runs" / "classify").iterdir()
    assert json.loads((run / "summary.json").read_text())["headline"]["name"] == "test_acc"

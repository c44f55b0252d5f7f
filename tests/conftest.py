"""Test set-up: import the package from this checkout's src/, render headless, find the shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Subprocesses (CLI, torchrun) import the same checkout.
os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NEURALSIGHT_OFFLINE", "1")  # tests never reach the network
if "NEURALSIGHT_DATA" not in os.environ and (ROOT.parent / "shared" / "datasets").is_dir():
    os.environ["NEURALSIGHT_DATA"] = str(ROOT.parent / "shared" / "datasets")
# Keep torch from fighting other processes for the 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def shared_data(name: str) -> Path:
    """Path of a dataset in $NEURALSIGHT_DATA, or skip with the reason (CI always has it)."""
    from neuralsight.data.catalog import find

    path = find(name)
    if path is None:
        pytest.skip(f"dataset {name} not available (set NEURALSIGHT_DATA=../shared/datasets)")
    return path


def shared_folder(name: str) -> Path:
    """A folder of ``$NEURALSIGHT_DATA`` that is not a catalog dataset (e.g. fashion-photos, for measuring only)."""
    path = Path(os.environ.get("NEURALSIGHT_DATA", "/nonexistent")) / name
    if not path.is_dir():
        pytest.skip(f"{name} not available (set NEURALSIGHT_DATA=../shared/datasets)")
    return path


@pytest.fixture
def runs_root(tmp_path) -> Path:
    return tmp_path / "runs"

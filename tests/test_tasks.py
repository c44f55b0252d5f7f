"""Every registered task through the shared task tester (tests/task_tester.py): a new task is covered by adding
its case here, and a registered task without one fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import shared_data, shared_folder
from task_tester import Case, broken_file, run_case

from neuralsight.tasks.base import list_tasks

TEST_ONLY = {"toy", "toymissing"}  # registered by tests/engine_toy.py


def _photos(tmp: Path) -> list[Path]:
    src = shared_folder("fashion-photos")
    folder = tmp / "photos"
    folder.mkdir()
    for name in ("Bag", "Trouser"):
        shutil.copy(sorted((src / name).glob("*.jpg"))[0], folder / f"{name}.jpg")
    return [folder, broken_file(tmp, "broken.png")]


CASES = {
    "classify": Case(["data.train_limit=2000", "data.val_size=200", "train.steps=4"], _photos,
                     data="fashion-mnist", explain_options={"index": 1}),
}


def test_every_task_has_a_case():
    missing = sorted(set(list_tasks()) - TEST_ONLY - set(CASES))
    assert not missing, f"registered tasks without a case in tests/test_tasks.py: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_task_end_to_end(name, tmp_path):
    case = CASES[name]
    if case.data:
        shared_data(case.data)
    run_case(name, case, tmp_path)

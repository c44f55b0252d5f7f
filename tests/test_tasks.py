"""Every registered task through the shared task tester (tests/task_tester.py): a new task is covered by adding
its case here, and a registered task without one fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import shared_data, shared_folder
from helpers import png_nonblank
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


def _text(tmp: Path) -> list[Path]:
    text = tmp / "scene.txt"
    text.write_text("ROMEO.\nBut soft, what light through yonder window breaks?\n", encoding="utf-8")
    return [text, broken_file(tmp, "broken.txt")]


def _pets(tmp: Path) -> list[Path]:
    src = shared_data("oxford-pets") / "images"
    return [*sorted(src.glob("*.jpg"))[:2], broken_file(tmp, "broken.png")]


def _volumes(tmp: Path) -> list[Path]:
    return [sorted((shared_data("msd-hippocampus") / "imagesTr").glob("*.nii.gz"))[0],
            broken_file(tmp, "broken.nii.gz")]


def _series(tmp: Path) -> list[Path]:
    return [shared_data("covid-hu") / "hungary_daily_cases.csv", broken_file(tmp, "broken.csv")]


CASES = {
    "classify": Case(["data.train_limit=2000", "data.val_size=200", "train.steps=4"], _photos,
                     data="fashion-mnist", explain_options={"index": 1}),
    "textgen": Case(["model.hidden_size=32", "train.steps=4", "samples.length=20"], _text, splits=("val",),
                    data="romeo-juliet"),
    "segment": Case(["train.steps=4", "model.base_channels=4", "model.depth=2", "data.max_train=24",
                     "data.max_val=8", "data.max_test=8", "data.image_size=32"], _pets, splits=("test", "val"),
                     data="oxford-pets", explain_options={"steps": 4, "index": 1}),
    "segment3d": Case(["train.steps=2", "model.base_channels=2", "model.depth=2", "model.kernel_size=3",
                       "data.limit=8", "eval.max_cases=2"], _volumes, splits=("test", "val"), data="msd-hippocampus",
                      explain_options={"steps": 4}),
    "forecast": Case(["train.steps=4", "model.hidden_size=8", 'model.models=["lstm","mlp"]', "position.steps=5"],
                     _series, splits=("test", "val"), data="covid-hu", explain_options={"steps": 8}),
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
    out = run_case(name, case, tmp_path)
    run = out["run"]
    if name in ("classify", "segment"):  # image tasks show an augmented training batch (issue 14 item 4)
        assert png_nonblank(run / "figures" / "train_batch.png")
        assert "A training batch after augmentation" in (run / "report.html").read_text(encoding="utf-8")
    if name == "classify":
        html = (run / "report.html").read_text(encoding="utf-8")
        assert png_nonblank(run / "figures" / "kernels.png") and "First-layer kernels" in html
        confusion = html[html.index('id="confusion"'):]
        assert "Per class beside it" in confusion[:confusion.index("</section>")]
        assert {p.name for p in out["explain"]} >= {"kernels.png", "test1_head.png", "test1_attributions.png"}

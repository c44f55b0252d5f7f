"""A segment run written by neuralsight 0.1 (tests/fixtures/runs-v0.1/segment) still opens, evaluates, predicts
and re-renders its report, with the numbers 0.1 printed (tests/fixtures/runs-v0.1/expected/*_segment.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from helpers import report_ok
from PIL import Image
from typer.testing import CliRunner

from neuralsight.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"
runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A copy of the 0.1 run (eval, predict and report write into the run)."""
    (src,) = (FIXTURES / "segment").iterdir()
    return Path(shutil.copytree(src, tmp_path / "segment" / src.name))


def _expected(name: str):
    return json.loads((FIXTURES / "expected" / name).read_text())


def test_eval_gives_the_numbers_0_1_printed(run_dir):
    shared_data("oxford-pets")
    expected = _expected("eval_segment.json")
    res = runner.invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got.pop("split") == "val"
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


def test_eval_refuses_the_test_split_it_does_not_have(run_dir):
    res = runner.invoke(app, ["eval", str(run_dir), "--split", "test"])
    assert res.exit_code == 2
    assert "--split test does not apply to a segment run" in res.output and "use --split val" in res.output


def test_predict_gives_the_areas_0_1_printed(run_dir, tmp_path):
    data = shared_data("oxford-pets")
    image = data / "images" / "Abyssinian_1.jpg"
    (old,) = _expected("predict_segment.json")["results"]
    out = tmp_path / "pred"
    res = runner.invoke(app, ["predict", str(run_dir), str(image), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["input"] == str(image) and old["input"].endswith("oxford-pets/images/Abyssinian_1.jpg")
    assert row["size"] == old["size"]
    assert row["areas"].keys() == old["areas"].keys()
    for name, area in old["areas"].items():
        assert row["areas"][name]["pixels"] == area["pixels"]
        assert row["areas"][name]["fraction"] == pytest.approx(area["fraction"], abs=1e-6)
    assert row["outputs"] == {"mask": str(out / "Abyssinian_1_mask.png"), "overlay": str(out / "Abyssinian_1_overlay.png")}
    mask = np.asarray(Image.open(row["outputs"]["mask"]))
    assert mask.shape == (old["size"][1], old["size"][0])
    assert np.bincount(mask.ravel(), minlength=3).tolist() == [a["pixels"] for a in old["areas"].values()]
    # predictions.json keeps 0.1's record layout: output paths at the top level
    (saved,) = json.loads((out / "predictions.json").read_text())
    assert saved == {"input": str(image), "size": old["size"], "mask": row["outputs"]["mask"],
                     "overlay": row["outputs"]["overlay"], "areas": row["areas"]}


def test_report_rerenders_from_the_0_1_files(run_dir):
    from neuralsight.tasks.base import SavedRun

    before = (run_dir / "report.html").stat().st_mtime_ns
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert (run_dir / "report.html").stat().st_mtime_ns != before and report_ok(run_dir)
    html = (run_dir / "report.html").read_text()
    for text in ("Segmentation: the lecture panel", "Per-class metrics", "Overlay view", "Best and worst images",
                 "official test split", 'class="sortable"'):
        assert text in html, text
    assert html.count("data:image/png;base64,") >= 4  # the three task figures and the training curves
    saved = SavedRun.open(run_dir)
    sections = saved.task.report(run_dir)
    (table,) = [b for s in sections if s.title == "Per-class metrics" for b in s.blocks if hasattr(b, "rows")]
    info = json.loads((run_dir / "segmentation.json").read_text())
    assert table.rows == [[r["class"], r["iou"], r["dice"], r["pixels"], r["share"]] for r in info["classes"]]

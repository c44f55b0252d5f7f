"""A classify run written by 0.1.0 (tests/fixtures/runs-v0.1) still loads, evaluates, predicts and re-renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import shared_data, shared_folder
from helpers import report_ok
from typer.testing import CliRunner

from neuralsight.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"


@pytest.fixture
def old_run(tmp_path) -> Path:
    (src,) = (FIXTURES / "classify").iterdir()
    dst = tmp_path / "classify" / src.name
    shutil.copytree(src, dst)
    return dst


def test_old_classify_run_evaluates_to_the_same_numbers(old_run):
    shared_data("fashion-mnist")
    res = CliRunner().invoke(app, ["eval", str(old_run), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    want = json.loads((FIXTURES / "expected" / "eval_classify.json").read_text())
    assert got.pop("split") == want.pop("split") == "test"
    assert got == pytest.approx(want, rel=1e-6)


def test_old_classify_run_predicts_the_same_classes(old_run):
    photo = shared_folder("fashion-photos") / "Bag" / "10320.jpg"
    res = CliRunner().invoke(app, ["predict", str(old_run), str(photo), "--json"])
    assert res.exit_code == 0, res.output
    (got,) = json.loads(res.stdout)
    (want,) = json.loads((FIXTURES / "expected" / "predict_classify.json").read_text())
    assert got["class"] == want["class"] and got["probability"] == pytest.approx(want["probability"], rel=1e-6)
    assert [t["class"] for t in got["top"]] == [t["class"] for t in want["top"]]


def test_old_classify_run_rerenders_its_report(old_run):
    (old_run / "report.html").unlink()
    res = CliRunner().invoke(app, ["report", str(old_run)])
    assert res.exit_code == 0, res.output
    assert report_ok(old_run)
    html = (old_run / "report.html").read_text()
    assert "Confusion matrix" in html and "split not recorded by this run" in html

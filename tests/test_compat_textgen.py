"""The textgen run written by 0.1.0 (tests/fixtures/runs-v0.1/textgen) still opens, evaluates, generates, explains
and re-renders its report, and `eval --json` / `generate` print what that version printed (expected/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import shared_data
from helpers import png_nonblank
from typer.testing import CliRunner

from neuralsight.cli import app
from neuralsight.tasks.base import SavedRun

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs-v0.1"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A copy of the fixture run (eval, explain and report write into the run)."""
    (src,) = list((FIXTURES / "textgen").iterdir())
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_eval_prints_the_numbers_of_0_1(run_dir):
    shared_data("romeo-juliet")
    expected = json.loads((FIXTURES / "expected" / "eval_textgen.json").read_text())
    res = CliRunner().invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got.pop("split") == "val"
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key


def test_generate_prints_the_text_of_0_1(run_dir):
    expected = (FIXTURES / "expected" / "generate_textgen.txt").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["generate", str(run_dir), "--seed", "ROMEO:", "--length", "60", "--rng-seed", "1"])
    assert res.exit_code == 0, res.output
    assert res.stdout == expected
    saved = SavedRun.open(run_dir)
    options = saved.task.GenerateOptions(seed="ROMEO:", length=60, rng_seed=1)
    assert "".join(saved.task.generate(saved, options)) + "\n" == expected


def test_old_run_explains_and_rerenders_its_report(run_dir, tmp_path):
    shared_data("romeo-juliet")
    res = CliRunner().invoke(app, ["explain", str(run_dir), "--out", str(tmp_path / "ex")])
    assert res.exit_code == 0, res.output
    assert all(png_nonblank(tmp_path / "ex" / name) for name in ("gates.png", "unfold.png"))
    (run_dir / "report.html").unlink()
    res = CliRunner().invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for words in ("Samples at each training stage", "best checkpoint (step 4)", "forget gate", "Unfolding in time",
                  "nanoGPT&#x27;s protocol", "val bits/char"):
        assert words in html, words
    assert html.count("data:image/png;base64,") >= 3       # gates, unfold, training curves

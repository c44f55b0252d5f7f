"""A segment3d run written by neuralsight 0.1 (tests/fixtures/runs-v0.1/segment3d) still opens, evaluates,
predicts and re-renders its report, with the numbers 0.1 printed (tests/fixtures/runs-v0.1/expected/*_segment3d.json)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import shared_data
from helpers import report_ok
from typer.testing import CliRunner

from neuralsight.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"
runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    (src,) = (FIXTURES / "segment3d").iterdir()
    return Path(shutil.copytree(src, tmp_path / "segment3d" / src.name))


def _expected(name: str):
    return json.loads((FIXTURES / "expected" / name).read_text())


def test_eval_gives_the_numbers_0_1_printed(run_dir):
    shared_data("msd-hippocampus")
    expected = _expected("eval_segment3d.json")
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
    assert "--split test does not apply to a segment3d run" in res.output and "use --split val" in res.output


def test_predict_gives_the_volumes_0_1_printed_and_goes_on_after_a_bad_file(run_dir, tmp_path):
    data = shared_data("msd-hippocampus")
    image = data / "imagesTr" / "hippocampus_001.nii.gz"
    (old,) = _expected("predict_segment3d.json")
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(image.read_bytes()[:300])
    out = tmp_path / "pred"
    # 0.1 stopped the whole batch at a bad volume; now the bad one is an error row and the good one is written.
    res = runner.invoke(app, ["predict", str(run_dir), str(bad), str(image), "--out", str(out), "--json"])
    assert res.exit_code == 2, res.output
    failed, row = json.loads(res.stdout)
    assert failed["input"] == str(bad) and str(bad) in failed["error"] and "outputs" not in failed
    assert row["input"] == str(image) and old["input"].endswith("msd-hippocampus/imagesTr/hippocampus_001.nii.gz")
    assert row["volumes_ml"] == {"anterior": pytest.approx(old["anterior_ml"], abs=1e-6),
                                 "posterior": pytest.approx(old["posterior_ml"], abs=1e-6)}
    seg = out / "hippocampus_001_seg.nii.gz"
    assert row["outputs"] == {"segmentation": str(seg), "slices": str(out / "hippocampus_001_slices.png"),
                              "volumes_csv": str(out / "volumes.csv")}  # the slice view is new since 0.1
    written, source = nib.load(str(seg)), nib.load(str(image))
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine)
    labels = np.asarray(written.dataobj)
    voxel_ml = float(np.prod(source.header.get_zooms()[:3])) / 1000
    assert (labels == 1).sum() * voxel_ml == pytest.approx(old["anterior_ml"], abs=1e-3)
    # volumes.csv and volumes.json keep 0.1's layout (good rows only)
    assert (out / "volumes.csv").read_text().splitlines() == [
        "input,output,anterior_ml,posterior_ml", f"{image},{seg},{old['anterior_ml']},{old['posterior_ml']}"]
    assert json.loads((out / "volumes.json").read_text()) == [
        {"input": str(image), "output": str(seg), "anterior_ml": old["anterior_ml"], "posterior_ml": old["posterior_ml"]}]


def test_report_rerenders_from_the_0_1_files(run_dir):
    from neuralsight.tasks.base import SavedRun

    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert report_ok(run_dir)
    html = (run_dir / "report.html").read_text()
    for text in ("Segmentation quality", "Orthogonal slices", "Input | Training mask | Output | Error",
                 "Per-case Dice", "hippocampus_011", 'class="sortable"'):
        assert text in html, text
    # The per-structure table equals what 0.1 wrote in summary.json (recomputed from the per-case rows).
    summary = json.loads((run_dir / "summary.json").read_text())["metrics"]
    saved = SavedRun.open(run_dir)
    (quality,) = [s for s in saved.task.report(run_dir) if s.title == "Segmentation quality"]
    (table,) = [b for b in quality.blocks if hasattr(b, "rows")]
    assert [r[0] for r in table.rows] == ["anterior", "posterior"]
    for name, dice, hd95, diff, absdiff in table.rows:
        for got, key in ((dice, "dice"), (hd95, "hd95"), (diff, "vol_diff_ml"), (absdiff, "vol_absdiff_ml")):
            assert not math.isnan(got) and got == pytest.approx(summary[f"{key}_{name}"], abs=1e-9), (key, name)

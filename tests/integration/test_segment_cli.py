"""`neuralsight train segment --quick` on the shared pets subset, then eval and predict on the saved run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_data
from helpers import png_nonblank, report_ok
from PIL import Image
from typer.testing import CliRunner

from neuralsight.cli import app


@pytest.mark.slow
def test_train_eval_predict_segment(tmp_path, monkeypatch):
    shared_data("oxford-pets")
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "segment", "--quick", "--steps", "3", "--out", str(tmp_path / "runs"),
                              "--no-progress", "--set", "data.max_train=24", "--set", "data.max_val=8",
                              "--set", "data.max_test=8",
                              "--set", "data.image_size=64", "--set", "model.base_channels=8",
                              "--set", "train.batch_size=8", "--set", "train.eval_every=3"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "runs" / "segment").iterdir())
    for name in ("panels.png", "overlay.png", "best_worst.png"):
        assert png_nonblank(run_dir / "figures" / name), name
    assert report_ok(run_dir)
    html = (run_dir / "report.html").read_text()
    assert "Training mask" in html and "Per-class metrics" in html and "border" in html
    summary = json.loads((run_dir / "summary.json").read_text())
    val, test = summary["metrics"]["val"], summary["metrics"]["test"]
    assert 0 <= val["miou"] <= 1 and 0 <= test["miou"] <= 1
    assert summary["headline"] == {"name": "test fg_iou", "value": test["fg_iou"], "split": "test"}
    # val is 15 % of the official trainval list (stratified by breed), test the official test list
    def listed(name):
        return {line.split()[0] for line in (shared_data("oxford-pets") / name).read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    data, trainval, official_test = summary["data"], listed("trainval.txt"), listed("test.txt")
    assert (data["val"], data["test"], data["unit"]) == (round(0.15 * len(trainval)), len(official_test), "image")
    assert data["train"] + data["val"] == len(trainval)
    info = json.loads((run_dir / "segmentation.json").read_text())
    assert len(info["per_image_miou"]) == 8 and set(info["per_image_miou"]) <= official_test
    assert "Scored once on the test split" in html

    res = runner.invoke(app, ["eval", str(run_dir), "--split", "test", "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["images"] == 8 and "iou_pet" in metrics and metrics["split"] == "test"
    assert metrics["fg_iou"] == pytest.approx(test["fg_iou"], abs=0.02)  # the number training reported
    res = runner.invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == 8

    big = np.random.default_rng(0).integers(0, 255, (150, 220, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "photo.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "pred"
    res = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "photo.png"), str(tmp_path / "broken.jpg"),
                              "--out", str(out)])
    assert res.exit_code == 2                              # one input failed ...
    assert "broken.jpg" in res.output
    mask = np.asarray(Image.open(out / "photo_mask.png"))  # ... the other was still written
    assert mask.shape == (150, 220) and mask.max() < 3
    assert Image.open(out / "photo_overlay.png").size == (220, 150)
    res = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "photo.png"), "--tile", "64",
                              "--out", str(tmp_path / "tiled"), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert sum(a["pixels"] for a in row["areas"].values()) == 150 * 220
    assert np.asarray(Image.open(row["outputs"]["mask"])).shape == (150, 220)


@pytest.mark.slow
def test_the_lectures_dental_xray_run_is_in_the_demo_with_its_panels(tmp_path, monkeypatch):
    """Issue 14 item 5: the demo trains the dental-xray preset next to the pets; its run draws the lecture panel
    (Input | Training mask | Output | Error) on the test radiographs, split by radiograph."""
    from neuralsight.cli.train import demo_plan

    assert ("segment", "pets", "segment") in demo_plan(["segment"])
    assert ("segment", "dental-xray", "segment (dental-xray)") in demo_plan(["segment"])
    shared_data("dental-xray")
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(app, ["train", "segment", "--preset", "dental-xray", "--quick", "--steps", "2",
                                   "--out", str(tmp_path / "runs"), "--no-progress", "--set", "data.image_size=64",
                                   "--set", "model.depth=2", "--set", "model.base_channels=4"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "runs" / "segment").iterdir())
    assert png_nonblank(run_dir / "figures" / "panels.png") and report_ok(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["headline"]["name"] == "test fg_dice" and summary["data"]["unit"] == "radiograph"
    assert summary["data"]["train"] + summary["data"]["val"] + summary["data"]["test"] == 50
    info = json.loads((run_dir / "segmentation.json").read_text())
    assert info["class_names"] == ["background", "tooth"] and len(info["per_image_miou"]) == summary["data"]["test"]
    assert "Training mask" in (run_dir / "report.html").read_text()

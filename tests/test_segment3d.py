"""segment3d task: config rules, case split, sliding-window inference, 3D U-Net alternative, CLI end to end."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import shared_data
from helpers import png_nonblank, report_ok
from typer.testing import CliRunner

from neuralsight import config as C
from neuralsight.errors import ConfigError
from neuralsight.models.unet import UNet
from neuralsight.models.vnet import VNet
from neuralsight.tasks import segment3d as S
from neuralsight.tasks.segmentation import infer_logits, summarize_rows


def test_preset_and_quick_resolve_and_check():
    cfg = C.build(S.Config, preset="hippocampus")
    assert cfg.model.name == "vnet" and cfg.model.kernel_size == 5 and cfg.data.patch_size == [32, 48, 32]
    quick = C.build(S.Config, preset="hippocampus", quick=True)
    assert quick.train.max_time <= 60 and quick.data.limit > 0
    with pytest.raises(ConfigError, match=r"data.patch_size = \[30, 48, 32\] must be multiples of 2\*\*model.depth"):
        C.build(S.Config, preset="hippocampus", overrides=["data.patch_size=[30, 48, 32]"])
    with pytest.raises(ConfigError, match=r"data.window .* must be \[low, high\]"):
        C.build(S.Config, preset="hippocampus", overrides=['data.normalize="window"'])
    with pytest.raises(ConfigError, match="model.name"):
        C.build(S.Config, preset="hippocampus", overrides=['model.name="vnet2"'])


def test_split_is_fixed_disjoint_and_by_case():
    from neuralsight.data.volumes import legacy_split_cases, split_cases

    names = [f"hippocampus_{i:03d}" for i in range(260)]
    parts = split_cases(names, 0.15, 0.15, 0)
    assert parts.sizes() == {"train": 182, "val": 39, "test": 39} and parts.unit == "case"
    assert not (set(parts.train) & set(parts.val) or set(parts.train) & set(parts.test) or
                set(parts.val) & set(parts.test))
    assert set(parts.train) | set(parts.val) | set(parts.test) == set(names)
    assert split_cases(list(reversed(names)), 0.15, 0.15, 0) == parts  # order of discovery does not matter
    assert split_cases(names, 0.15, 0.15, 1).test != parts.test
    # 0.1 runs keep the two-way split they trained on (208 / 52, no test)
    old = legacy_split_cases(names, 0.2, 0)
    assert (len(old.train), len(old.val), old.test) == (208, 52, [])
    assert legacy_split_cases(list(reversed(names)), 0.2, 0) == old


@pytest.mark.parametrize("size", [(17, 23, 9), (35, 51, 35)])
def test_unet3d_alternative_odd_sizes_and_gradients(size):
    cfg = C.build(S.Config, preset="hippocampus", overrides=['model.name="unet3d"', "model.base_channels=2",
                                                             "model.depth=2"])
    model, spec = S.build_model(cfg, 1, 3)
    assert isinstance(model, UNet) and spec["name"] == "unet" and spec["kwargs"]["spatial_dims"] == 3
    x = torch.randn(1, 1, *size)
    y = model(x)
    assert y.shape == (1, 3, *size)
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_sliding_window_equals_whole_volume_inference():
    torch.manual_seed(0)
    model = VNet(1, 3, base_channels=4, depth=2, kernel_size=3).eval()
    image = torch.randn(1, 13, 21, 11)
    cfg = C.build(S.Config, preset="hippocampus", overrides=["eval.roi_size=[16, 24, 16]"])
    with torch.no_grad():
        whole = model(image[None])[0]
    np.testing.assert_allclose(infer_logits(model, image, cfg, "cpu"), whole, atol=1e-5)
    # A pointwise model gives the same values in every window, so blended overlapping windows equal it too.
    point = torch.nn.Conv3d(1, 3, 1).eval()
    cfg = C.build(S.Config, preset="hippocampus", overrides=["eval.roi_size=[8, 8, 8]", "eval.overlap=0.5"])
    with torch.no_grad():
        whole = point(image[None])[0]
    np.testing.assert_allclose(infer_logits(point, image, cfg, "cpu"), whole, atol=1e-5)


def test_summarize_rows_ignores_nan():
    rows = [{"case": "a", "dice_x": 0.5, "vol_diff_ml_x": -1.0, "dice_mean": 0.5},
            {"case": "b", "dice_x": float("nan"), "vol_diff_ml_x": 3.0, "dice_mean": float("nan")}]
    s = summarize_rows(rows, ["background", "x"])
    assert s["dice_x"] == 0.5 and s["val_dice"] == 0.5 and s["vol_diff_ml_x"] == 1.0
    assert s["vol_absdiff_ml_x"] == 2.0


@pytest.mark.slow
def test_cli_train_quick_then_predict_and_eval(tmp_path):
    data = shared_data("msd-hippocampus")
    from neuralsight.cli import app

    runner = CliRunner()
    root = tmp_path / "runs"
    result = runner.invoke(app, ["train", "segment3d", "--quick", "--out", str(root), "--steps", "6",
                                 "--no-progress", "--set", "train.max_time=0", "--set", "data.limit=12",
                                 "--set", "eval.max_cases=2", "--set", "train.eval_every=3"])
    assert result.exit_code == 0, result.output
    (run,) = (root / "segment3d").iterdir()
    for name in ("config.toml", "metrics.jsonl", "summary.json", "report.html", "checkpoints/best.safetensors",
                 "checkpoints/last.json", "samples/cases.json"):
        assert (run / name).is_file(), name
    for fig in ("orthogonal.png", "panel.png", "worst_cases.png"):
        assert png_nonblank(run / "figures" / fig), fig
    assert report_ok(run)
    html = (run / "report.html").read_text()
    assert 'class="sortable"' in html and "Input | Training mask | Output | Error" in html
    summary = json.loads((run / "summary.json").read_text())
    assert summary["headline"]["name"] == "test_dice" and 0 <= summary["headline"]["value"] <= 1
    assert summary["headline"]["split"] == "test"
    test, val = summary["metrics"]["test"], summary["metrics"]["val"]
    assert {"dice_anterior", "dice_posterior", "hd95_anterior", "vol_diff_ml_posterior"} <= set(test)
    assert test["dice"] == summary["headline"]["value"] and test["cases"] == 2 and 0 <= val["val_dice"] <= 1
    assert summary["data"] == {"train": 8, "val": 2, "test": 2, "unit": "case"}  # 12 cases, 15 % / 15 %
    cases = json.loads((run / "samples" / "cases.json").read_text())
    assert cases["scored_split"] == "test" and [r["case"] for r in cases["cases"]] == cases["split"]["test"]
    assert not set(cases["split"]["test"]) & (set(cases["split"]["val"]) | set(cases["split"]["train"]))

    images = sorted((data / "imagesTr").iterdir())[:2]
    out = tmp_path / "pred"
    result = runner.invoke(app, ["predict", str(run), *map(str, images), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for img in images:
        pred = nib.load(str(out / img.name.replace(".nii.gz", "_seg.nii.gz")))
        src = nib.load(str(img))
        assert pred.shape == src.shape
        np.testing.assert_allclose(pred.affine, src.affine)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1, 2}
    table = (out / "volumes.csv").read_text().splitlines()
    assert table[0] == "input,output,anterior_ml,posterior_ml" and len(table) == 3

    result = runner.invoke(app, ["eval", str(run), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert "hd95_anterior" in metrics and metrics["cases"] == len(cases["split"]["val"])
    assert metrics["split"] == "val"
    result = runner.invoke(app, ["eval", str(run), "--json"])  # the default split is test
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "test" and metrics["cases"] == 2
    assert metrics["dice"] == pytest.approx(test["dice"], abs=0.02)  # the number training reported

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(images[0].read_bytes()[:200])
    result = runner.invoke(app, ["predict", str(run), str(bad), str(images[1]), "--out", str(tmp_path / "p2")])
    assert result.exit_code == 2 and "bad.nii.gz" in result.output
    assert (tmp_path / "p2" / images[1].name.replace(".nii.gz", "_seg.nii.gz")).is_file()  # the batch went on


def test_cli_trains_unet3d_on_a_user_folder_with_ct_window(tmp_path):
    """A user's Decathlon-style folder (CT-like intensities, 2 mm voxels) through the same code path."""
    from neuralsight.cli import app

    rng = np.random.default_rng(0)
    (tmp_path / "data" / "imagesTr").mkdir(parents=True)
    (tmp_path / "data" / "labelsTr").mkdir()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for i in range(5):
        label = np.zeros((13, 17, 11), np.uint8)
        label[3 + i % 3:9, 4:12, 3:8] = 1
        image = rng.normal(0, 30, label.shape) + 200 * label - 50
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), str(tmp_path / "data" / "imagesTr" / f"ct_{i}.nii.gz"))
        nib.save(nib.Nifti1Image(label, affine), str(tmp_path / "data" / "labelsTr" / f"ct_{i}.nii.gz"))
    root = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "train", "segment3d", "--dataset", "folder", "--data", str(tmp_path / "data"), "--out", str(root),
        "--steps", "2", "--no-progress", "--batch-size", "2", "--set", 'model.name="unet3d"',
        "--set", "model.base_channels=2", "--set", "model.depth=2", "--set", "data.patch_size=[8, 8, 8]",
        "--set", 'data.normalize="window"', "--set", "data.window=[-100, 300]", "--set", "eval.overlap=0.25"])
    assert result.exit_code == 0, result.output
    (run,) = (root / "segment3d").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"]["name"] == "unet" and summary["class_names"] == ["background", "class 1"]
    # Volumes come from the 2 mm spacing: each test label holds (9 - 3 - i%3) * 8 * 5 voxels of 8 mm^3.
    vol = summary["metrics"]["test"]["vol_true_ml_class 1"]
    assert any(vol == pytest.approx(n * 40 * 8 / 1000) for n in (4, 5, 6)), vol
    result = CliRunner().invoke(app, ["train", "segment3d", "--dataset", "folder", "--out", str(root)])
    assert result.exit_code == 2 and "needs a folder" in result.output

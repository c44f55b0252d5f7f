"""The segment and segment3d tasks without training: the shared palette, the figures, predict on saved runs
(per-file errors, outputs, areas and volumes against a reference), options and splits."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import png_nonblank
from PIL import Image

from neuralsight import config as C
from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import runs
from neuralsight.errors import ConfigError, UserError
from neuralsight.models import create_model
from neuralsight.tasks import segment as S2
from neuralsight.tasks import segment3d as S3
from neuralsight.tasks.base import SavedRun, parse_options
from neuralsight.tasks.segmentation import normalize, segment_image
from neuralsight.viz import palette

NAMES = ["background", "pet", "border"]


def _saved(tmp_path, task: str, cfg, name: str, kwargs: dict, info: tuple[str, dict]) -> SavedRun:
    """A run directory as training leaves it (untrained weights): config, best checkpoint, the task's JSON."""
    torch.manual_seed(0)
    run = runs.create(task, "t", root=tmp_path / "runs")
    (run.path / "config.toml").write_text(C.dump_toml({"task": task, **C.to_dict(cfg)}))
    ckpt.save(run.checkpoints, "best", create_model(name, **kwargs), {"name": name, "kwargs": kwargs}, {"step": 0})
    run.write_json(*info)
    return SavedRun.open(run.path, device="cpu")


@pytest.fixture
def saved2d(tmp_path) -> SavedRun:
    cfg = C.build(S2.Config, overrides=["data.image_size=32", "model.depth=2", "model.base_channels=4"])
    kwargs = {"spatial_dims": 2, "in_channels": 3, "num_classes": 3, "depth": 2, "base_channels": 4,
              "up": "transpose", "norm": "batch", "dropout": 0.0}
    return _saved(tmp_path, "segment", cfg, "unet", kwargs, (S2.INFO_FILE, {"class_names": NAMES}))


@pytest.fixture
def saved3d(tmp_path) -> SavedRun:
    cfg = C.build(S3.Config, preset="hippocampus", overrides=["model.depth=2", "model.base_channels=2",
                                                              "model.kernel_size=3", "data.patch_size=[8, 8, 8]"])
    kwargs = {"in_channels": 1, "num_classes": 3, "base_channels": 2, "depth": 2, "kernel_size": 3,
              "norm": "batch", "dropout": 0.0}
    return _saved(tmp_path, "segment3d", cfg, "vnet", kwargs,
                  (S3.CASES_FILE, {"class_names": ["background", "anterior", "posterior"]}))


def test_palette_is_one_table_for_2d_and_3d():
    mask = np.array([[0, 1, 2], [3, 255, 12]], np.uint8)
    rgb = palette.colourize(mask, num_classes=4)
    assert rgb[0, 1].tolist() == list(palette.COLOURS[1]) and rgb[1, 0].tolist() == list(palette.COLOURS[3])
    assert rgb[0, 0].tolist() == list(palette.BACKGROUND_SHOWN) and rgb[1, 1].tolist() == list(palette.IGNORED_SHOWN)
    assert rgb[1, 2].tolist() == [0, 0, 0]  # a class the run does not have
    layer = palette.rgba(mask, alpha=0.5)   # the 3D figures' overlay layer: the same colours
    assert layer[0, 0, 3] == 0 and layer[1, 1, 3] == 0
    for r, c in ((0, 1), (0, 2), (1, 0)):
        np.testing.assert_allclose(layer[r, c, :3] * 255, palette.COLOURS[mask[r, c]])
        assert layer[r, c, 3] == 0.5
    np.testing.assert_allclose(layer[1, 2, :3] * 255, palette.COLOURS[12 % len(palette.COLOURS)])
    image = np.full((2, 3, 3), 100, np.uint8)
    out = palette.overlay(image, mask, 4, alpha=0.25)
    assert (out[0, 0] == 100).all() and (out[1, 1] == 100).all()  # background and padding untouched
    np.testing.assert_array_equal(out[0, 1], (0.75 * 100 + 0.25 * np.array(palette.COLOURS[1])).astype(np.uint8))


def test_segment_figures_from_plain_arrays(tmp_path):
    from neuralsight.viz.segment import segment_figures, valid_box

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 24, 24, 3), dtype=np.uint8)
    masks = rng.integers(0, 3, (5, 24, 24), dtype=np.uint8)
    masks[:, 20:, :] = palette.IGNORE  # padding at the bottom
    preds = rng.integers(0, 3, (5, 24, 24), dtype=np.uint8)
    assert valid_box(masks[0]) == (slice(0, 20), slice(0, 24))
    paths = segment_figures(tmp_path, images, masks, preds, [f"im{i}" for i in range(5)], NAMES,
                            np.array([0.1, np.nan, 0.5, 0.9, 0.3]), 4, "validation split")
    assert [p.name for p in paths] == ["panels.png", "overlay.png", "best_worst.png"]
    assert all(png_nonblank(p) for p in paths)


def test_volume_figures_from_plain_arrays(tmp_path):
    from neuralsight.viz.volumes import VolumeView, volume_figures

    rng = np.random.default_rng(0)
    views = []
    for i in range(4):
        truth = np.zeros((12, 14, 10), np.int64)
        truth[3:8, 4:9, 2:7] = 1
        truth[5:8, 4:9, 6:9] = 2
        pred = np.roll(truth, i, axis=0)
        views.append(VolumeView(f"case{i}", rng.normal(size=truth.shape), truth, pred, dice=1.0 - i / 10))
    paths = volume_figures(tmp_path, views, ["background", "anterior", "posterior"])
    assert [p.name for p in paths] == ["orthogonal.png", "panel.png", "worst_cases.png"]
    assert all(png_nonblank(p) for p in paths)


def test_segment_image_equals_the_model_on_the_training_scale(saved2d):
    model = saved2d.model()
    image = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        reference = model(normalize(x)).argmax(1)[0].numpy()
        whole = segment_image(model, image, 32, "cpu")
        tiled = segment_image(model, image, 32, "cpu", tile=64)  # one window covers the image
    np.testing.assert_array_equal(whole, reference)
    np.testing.assert_array_equal(tiled, reference)


def test_predict_2d_writes_masks_and_reports_each_bad_file(saved2d, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (30, 20), dtype=np.uint8)).save(tmp_path / "grey.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    missing = tmp_path / "nowhere.png"
    out = tmp_path / "out"
    rows = saved2d.task.predict(saved2d, [folder, tmp_path / "grey.png", missing], out, S2.PredictOptions())
    assert [r["input"] for r in rows] == [str(folder / "a.png"), str(folder / "broken.jpg"),
                                          str(tmp_path / "grey.png"), str(missing)]
    bad = [r for r in rows if "error" in r]
    assert [r["input"] for r in bad] == [str(folder / "broken.jpg"), str(missing)]
    assert all(r["input"] in r["error"] for r in bad) and "does not exist" in bad[1]["error"]
    for r, (w, h) in zip([rows[0], rows[2]], [(70, 50), (20, 30)], strict=True):
        with Image.open(r["outputs"]["mask"]) as written:  # a palette PNG: indices as pixels, class colours
            assert written.mode == "P"
            entries = written.getpalette()
            assert [tuple(entries[3 * c:3 * c + 3]) for c in (1, 2)] == [palette.class_colour(1),
                                                                         palette.class_colour(2)]
            mask = np.asarray(written)
        assert r["size"] == [w, h] and mask.shape == (h, w) and mask.max() < 3
        assert Image.open(r["outputs"]["overlay"]).size == (w, h)
        counts = np.bincount(mask.ravel(), minlength=3)
        assert [r["areas"][n]["pixels"] for n in NAMES] == counts.tolist()
        assert sum(a["fraction"] for a in r["areas"].values()) == pytest.approx(1.0)
    assert [p["input"] for p in json.loads((out / "predictions.json").read_text())] == [rows[0]["input"],
                                                                                        rows[2]["input"]]
    tiled = saved2d.task.predict(saved2d, [folder / "a.png"], tmp_path / "t", S2.PredictOptions(tile=16, overlap=0.5))
    assert np.asarray(Image.open(tiled[0]["outputs"]["mask"])).shape == (50, 70)
    with pytest.raises(UserError, match="no input images"):
        saved2d.task.predict(saved2d, [], out, S2.PredictOptions())


def test_predict_options_are_typed_and_checked(saved2d):
    opts = parse_options(S2.PredictOptions, {"tile": 64, "overlap": 0.5}, "predict", "segment")
    assert (opts.tile, opts.overlap) == (64, 0.5)
    with pytest.raises(ConfigError, match="'top_k' does not apply to a segment run.*tile, overlap"):
        parse_options(S2.PredictOptions, {"top_k": 3}, "predict", "segment")
    with pytest.raises(ConfigError, match="overlap"):
        parse_options(S2.PredictOptions, {"overlap": 0.99}, "predict", "segment")
    with pytest.raises(ConfigError, match="'tile' does not apply to a segment3d run"):
        parse_options(S3.Segment3D.PredictOptions, {"tile": 64}, "predict", "segment3d")


@pytest.mark.parametrize("task", ["segment", "segment3d"])
def test_evaluate_takes_test_and_val_but_a_0_1_run_only_val(task, saved2d, saved3d):
    from neuralsight.tasks.segmentation import two_way_run

    saved = saved2d if task == "segment" else saved3d
    assert saved.task.splits == ("test", "val") and not two_way_run(saved)
    config = saved.path / "config.toml"  # a 0.1 config: no data.test_fraction
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "test_fraction" not in line))
    assert two_way_run(saved)
    with pytest.raises(UserError, match=f"--split test does not apply to a {task} run of 0.1.*validation split"):
        saved.task.evaluate(saved, "test")


def test_predict_3d_writes_nifti_and_volumes_and_goes_on_after_a_bad_file(saved3d, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "decathlon"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = np.diag([2.0, 1.5, 1.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    for name in ("v1", "v2"):
        nib.save(nib.Nifti1Image(rng.normal(size=(11, 13, 9)).astype(np.float32), affine),
                 str(root / "imagesTr" / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(np.ones((11, 13, 9), np.uint8), affine), str(root / "labelsTr" / f"{name}.nii.gz"))
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes((root / "imagesTr" / "v1.nii.gz").read_bytes()[:100])
    out = tmp_path / "out"
    rows = saved3d.task.predict(saved3d, [bad, root], out, S3.Segment3D.PredictOptions())
    assert [r["input"] for r in rows] == [str(bad), str(root / "imagesTr" / "v1.nii.gz"),
                                          str(root / "imagesTr" / "v2.nii.gz")]  # labelsTr is not segmented
    assert "error" in rows[0] and str(bad) in rows[0]["error"]
    for r in rows[1:]:
        seg = nib.load(r["outputs"]["segmentation"])
        assert seg.shape == (11, 13, 9)
        np.testing.assert_allclose(seg.affine, affine)
        labels = np.asarray(seg.dataobj)
        voxel_ml = 2.0 * 1.5 * 1.0 / 1000
        assert r["volumes_ml"] == {n: pytest.approx(round((labels == c).sum() * voxel_ml, 4), abs=1e-9)
                                   for c, n in ((1, "anterior"), (2, "posterior"))}
        assert r["outputs"]["volumes_csv"] == str(out / "volumes.csv")
        name = Path(r["input"]).name.removesuffix(".nii.gz")
        assert r["outputs"]["slices"] == str(out / f"{name}_slices.png") and png_nonblank(r["outputs"]["slices"])
    lines = (out / "volumes.csv").read_text().splitlines()
    assert lines[0] == "input,output,anterior_ml,posterior_ml" and len(lines) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no volumes given"):
        saved3d.task.predict(saved3d, [tmp_path / "empty"], out, S3.Segment3D.PredictOptions())


def test_report_of_a_run_without_final_evaluation(tmp_path):
    from neuralsight.tasks.base import get_task

    sections = get_task("segment3d").report(tmp_path)
    assert [s.title for s in sections] == ["Segmentation"]
    sections = get_task("segment").report(tmp_path)  # the figures are missing: their sections render empty
    assert sections[0].title == "Segmentation: the lecture panel" and all(s.empty for s in sections[1:])
    (panel,) = [b for b in sections[0].blocks if getattr(b, "path", None) and b.path.name == "panels.png"]
    assert "red: false positive" in panel.caption and "cyan: false negative" in panel.caption
    assert palette.ERROR_COLOURS[1][0] == "false positive" and palette.ERROR_COLOURS[1][1][0] > 200  # red


def test_error_map_tells_false_positives_from_false_negatives():
    truth = np.array([[0, 0, 1, 1, 2, 255],
                      [1, 2, 0, 2, 0, 255]], np.uint8)
    pred = np.array([[0, 1, 1, 0, 1, 1],
                     [2, 1, 2, 2, 0, 0]], np.uint8)
    np.testing.assert_array_equal(palette.error_map(truth, pred),
                                  [[0, 1, 0, 2, 1, 0],    # FP on background, FN (1 missed), wrong class = FP
                                   [1, 1, 1, 0, 0, 0]])   # padding (255) is never an error
    volume = np.stack([truth, truth]).astype(np.int64)   # 3D labels without padding: ignore=None
    codes = palette.error_map(volume, np.zeros_like(volume), ignore=None)
    assert codes.shape == volume.shape and set(np.unique(codes[volume > 0])) == {palette.FALSE_NEGATIVE}


def test_the_lecture_panels_name_the_classes_and_both_error_colours(tmp_path):
    from matplotlib.colors import to_rgb

    from neuralsight.viz.segment import lecture_panel
    from neuralsight.viz.volumes import VolumeView, volume_panel

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (16, 16), dtype=np.uint8)
    truth = np.zeros((6, 8, 8), np.int64)
    truth[2:4, 2:6, 2:6] = 1
    figures = [lecture_panel([(image, mask, np.roll(mask, 1, 0), " a")], NAMES, "t"),
               volume_panel([VolumeView("case", rng.normal(size=truth.shape), truth, np.roll(truth, 1, 1), 0.5)],
                            NAMES, "t")]
    for fig in figures:
        (legend,) = fig.legends
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == NAMES + ["false positive", "false negative"]
        colours = [tuple(round(v * 255) for v in to_rgb(h.get_facecolor())) for h in legend.legend_handles]
        assert colours[1:3] == [palette.class_colour(1), palette.class_colour(2)]
        assert colours[3:] == [palette.ERROR_COLOURS[1][1], palette.ERROR_COLOURS[2][1]]
        error_axes = fig.axes[3]
        assert len(error_axes.images) == 2  # the image underneath, the error colours over it


class EdgeOfTrainingSharpness(torch.nn.Module):
    """A toy net with a known answer that depends on pixel scale, as a trained one does: class 1 where channel 0's
    gradient (normalised units per pixel) is in the band that the training images' edges had, class 0 elsewhere."""

    def forward(self, x):                                                         # (B, 3, H, W)
        p = torch.nn.functional.pad(x[:, :1], (1, 1, 1, 1), mode="replicate")
        gy, gx = (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]) / 2, (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]) / 2
        g = (gx ** 2 + gy ** 2).sqrt()                                            # (B, 1, H, W)
        return torch.cat([torch.full_like(g, 0.5), torch.minimum(g, 2.5 - g)], 1)  # (B, 2, H, W): 0.5 < g < 2


def _ramp_disk(height: int, width: int, centre, radius: float, ramp: float):
    yy, xx = np.mgrid[:height, :width]
    r = np.hypot(yy - centre[0], xx - centre[1])
    v = (np.clip((radius - r) / ramp, 0, 1) * 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


def _iou(a, b):
    return ((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum())


def test_tiled_prediction_segments_at_the_training_scale():
    model = EdgeOfTrainingSharpness()
    # Trained on 1024-pixel photos shrunk to 128: an edge 24 px wide at native size was 3 px wide to the net.
    photo = _ramp_disk(768, 1024, (384, 512), 250, 24)
    with torch.no_grad():
        whole = segment_image(model, photo, 128, "cpu")
        tiled = segment_image(model, photo, 128, "cpu", tile=64, native_side=1024)
        unknown = segment_image(model, photo, 128, "cpu", tile=64)  # no recorded scale: the photo's own side
        native = model(normalize(torch.from_numpy(photo).permute(2, 0, 1)[None])).argmax(1)[0].numpy()
    assert whole.sum() > 1000 and native.sum() == 0  # at native resolution the net sees no edge at all
    assert _iou(tiled, whole) > 0.8 and _iou(unknown, whole) > 0.8
    # A 2x2 mosaic of such photos: the tiles keep each one at the training scale, so each quadrant is labelled
    # as the photo alone is (a whole-image pass would shrink every edge to half of what the net knows).
    mosaic = np.tile(photo, (2, 2, 1))
    with torch.no_grad():
        big = segment_image(model, mosaic, 128, "cpu", tile=64, overlap=0.25, native_side=1024)
    assert big.shape == (1536, 2048)
    with torch.no_grad():
        shrunk = segment_image(model, mosaic, 128, "cpu")
    assert _iou(shrunk[:768, :1024], whole) < 0.7
    for qy in (0, 768):
        for qx in (0, 1024):
            assert _iou(big[qy:qy + 768, qx:qx + 1024], whole) > 0.8, (qy, qx)


def test_tile_below_the_minimum_is_refused_and_predict_uses_the_recorded_scale(saved2d, tmp_path):
    image = np.random.default_rng(2).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    with pytest.raises(UserError, match=r"--tile 8 is too small for a net trained on 32-pixel images: expected "
                                        r"at least 16 pixels.*use --tile 32"):
        segment_image(saved2d.model(), image, 32, "cpu", tile=8)
    saved2d.path.joinpath(S2.INFO_FILE).write_text(json.dumps({"class_names": NAMES, "native_side": 120}))
    Image.fromarray(image).save(tmp_path / "a.png")
    (row,) = saved2d.task.predict(saved2d, [tmp_path / "a.png"], tmp_path / "o", S2.PredictOptions(tile=16))
    with torch.no_grad():
        expected = segment_image(saved2d.model(), image, 32, "cpu", tile=16, native_side=120)
    np.testing.assert_array_equal(np.asarray(Image.open(row["outputs"]["mask"])), expected)
    assert S2.native_side([(375, 500), (500, 333), (600, 400)]) == 500

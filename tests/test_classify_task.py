"""The classify task without training: augmentation, metrics, predict/explain on a saved run, CLI commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import png_nonblank
from PIL import Image
from typer.testing import CliRunner

from neuralsight import config as C
from neuralsight.cli import app
from neuralsight.engine import checkpoint as ckpt
from neuralsight.engine import runs
from neuralsight.tasks import classify as T

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture
def saved_run(tmp_path):
    """A run directory as training leaves it (untrained weights): config, classes, best checkpoint."""
    torch.manual_seed(0)
    run = runs.create("classify", "t", root=tmp_path / "runs")
    cfg = C.build(T.Config, overrides=["model.arch=lecture"])
    (run.path / "config.toml").write_text(C.dump_toml({"task": "classify", **C.to_dict(cfg)}))
    kwargs = T.build_model_kwargs(cfg.model, 1, 10, (28, 28), [0.3], [0.35])
    from neuralsight.models import create_model

    model = create_model("cnn", **kwargs)
    ckpt.save(run.checkpoints, "best", model, {"name": "cnn", "kwargs": kwargs}, {"step": 0})
    run.write_json(T.META_FILE, {"classes": CLASSES, "image_size": [28, 28], "channels": 1})
    return run.path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "img"
    d.mkdir()
    paths = {
        "rgb": d / "rgb.png", "large": d / "large.jpg", "tiny": d / "tiny.png", "gray": d / "gray.bmp",
        "rgba": d / "rgba.png",
    }
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(paths["rgb"])
    Image.fromarray(rng.integers(0, 255, (1200, 900, 3), dtype=np.uint8)).save(paths["large"])
    Image.fromarray(rng.integers(0, 255, (3, 2), dtype=np.uint8)).save(paths["tiny"])
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(paths["gray"])
    Image.fromarray(rng.integers(0, 255, (20, 20, 4), dtype=np.uint8)).save(paths["rgba"])
    paths["corrupt"] = d / "corrupt.png"
    paths["corrupt"].write_bytes(paths["rgb"].read_bytes()[:60])
    paths["text"] = d / "notes.jpg"
    paths["text"].write_text("not an image")
    return paths


def test_augment_keeps_shape_and_content():
    from neuralsight.data.augment import FlipShiftConfig, flip_and_shift

    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    out = flip_and_shift(x, FlipShiftConfig(hflip=0.0, shift=0))
    torch.testing.assert_close(out, x)
    out = flip_and_shift(x, FlipShiftConfig(hflip=0.5, shift=3))
    assert out.shape == x.shape
    # every output is a (flipped) shifted window of the zero-padded input
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for b in range(8):
        found = any(torch.equal(out[b], cand[..., dy:dy + 28, dx:dx + 28])
                    for cand in (padded[b], padded[b].flip(-1)) for dy in range(7) for dx in range(7))
        assert found


def test_classification_metrics():
    from neuralsight.engine.metrics import classification_metrics

    y = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0, 2])
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    a, b, c = m["per_class"]
    assert (a["precision"], a["recall"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (b["precision"], b["recall"], b["f1"]) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    assert (c["precision"], c["recall"], c["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert m["most_confused"] == [{"a": "a", "b": "c", "a_as_b": 0, "b_as_a": 1, "total": 1},
                                  {"a": "a", "b": "b", "a_as_b": 1, "b_as_a": 0, "total": 1}]


def test_predict_any_image_and_corrupt_files(saved_run, images, tmp_path):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(saved_run)
    order = ["rgb", "corrupt", "large", "tiny", "gray", "text", "rgba"]
    out = saved.task.predict(saved, [images[k] for k in order], tmp_path, T.PredictOptions(top_k=3))
    assert sorted(r["input"] for r in out) == sorted(str(images[k]) for k in order)
    assert [r["input"] for r in out if "error" in r] == [str(images["corrupt"]), str(images["text"])]
    for r in out:
        if "error" in r:
            assert r["input"] in r["error"]
        else:
            assert r["class"] in CLASSES and len(r["top"]) == 3
            assert sum(t["probability"] for t in r["top"]) <= 1 + 1e-6
            assert r["top"][0]["probability"] >= r["top"][1]["probability"]


def test_predict_cli_exit_codes(saved_run, images):
    res = CliRunner().invoke(app, ["predict", str(saved_run), str(images["rgb"]), str(images["corrupt"])])
    assert res.exit_code == 2
    assert "rgb.png" in res.output and "corrupt image" in res.output
    res = CliRunner().invoke(app, ["predict", str(saved_run), str(images["large"]), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["class"] in CLASSES
    res = CliRunner().invoke(app, ["predict", str(saved_run), str(images["large"]), "--tile", "64"])
    assert res.exit_code == 2 and "'tile' does not apply to a classify run" in res.output


def test_preprocess_is_documented_behaviour():
    from neuralsight.data.imagefolder import preprocess

    img = Image.new("L", (60, 30), 255)  # a white product photo background with a black bar
    img.paste(0, (20, 10, 40, 20))
    arr = preprocess(img, (28, 28), 1, invert="auto")
    assert arr.shape == (1, 28, 28) and arr.dtype == np.uint8
    assert arr[0, 0, 0] < 10 and arr[0, 14, 14] > 245  # inverted: light object on black, aspect kept
    rgb = preprocess(Image.new("RGB", (5, 9), (10, 200, 30)), (32, 32), 3)
    assert rgb.shape == (3, 32, 32)


def test_preprocess_trim_makes_a_small_item_fill_the_frame():
    """trim=True (a Fashion-MNIST run's predict): a 20x10 bar in a 200x200 white photo spans the full width."""
    from neuralsight.data.imagefolder import content_box, preprocess

    img = Image.new("L", (200, 200), 250)
    img.paste(30, (150, 20, 170, 30))                     # the item, far off centre
    img.putpixel((5, 190), 244)                           # within the tolerance of the backdrop: trimmed away
    untrimmed = preprocess(img, (28, 28), 1, invert="auto")
    trimmed = preprocess(img, (28, 28), 1, invert="auto", trim=True)
    assert (untrimmed[0] > 128).sum() < 10                # 20x10 of 200x200 shrinks to about 3x1 pixels
    assert (trimmed[0, 14] > 200).all()                   # the middle row: the bar from edge to edge
    assert trimmed[0, 0].max() < 10 and trimmed[0, -1].max() < 10   # padded above and below (aspect 2:1)
    arr = np.asarray(img, dtype=np.float32)
    assert content_box(arr, np.float32(250)) == (150, 20, 170, 30)
    assert content_box(np.full((4, 6), 7.0), np.float32(7)) == (0, 0, 6, 4)   # blank: kept whole


def test_predict_trims_as_the_run_recorded(saved_run, tmp_path, monkeypatch):
    import json

    import neuralsight.data.imagefolder as imf
    from neuralsight.tasks.base import SavedRun

    seen = []
    real = imf.preprocess
    monkeypatch.setattr(imf, "preprocess", lambda *a: seen.append(a[4]) or real(*a))
    photo = tmp_path / "p.png"
    Image.new("L", (40, 40), 255).save(photo)
    meta_path = saved_run / T.META_FILE
    old = json.loads(meta_path.read_text())         # as a run written before the choice was recorded
    assert "preprocess" not in old
    meta = {**old, "dataset": "fashion-mnist", "preprocess": {"trim_margins": imf.trims_margins("fashion-mnist")}}
    assert not imf.trims_margins("folder")
    cases = [(meta, "auto", True), ({**meta, "preprocess": {"trim_margins": False}}, "auto", False),
             (old, "auto", False), (old, "yes", True), (meta, "no", False)]
    for written, option, trims in cases:
        meta_path.write_text(json.dumps(written))
        saved = SavedRun.open(saved_run)
        saved.task.predict(saved, [photo], tmp_path, T.PredictOptions(trim=option))
        assert seen[-1] is trims, (written.get("preprocess"), option)


def test_explain_writes_attribution_and_feature_pngs(saved_run, images, tmp_path):
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(saved_run)
    paths = saved.task.explain(saved, [images["gray"]], tmp_path / "ex", T.ExplainOptions())
    names = sorted(p.name for p in paths)
    assert names == ["gray_attributions.png", "gray_features.png", "gray_head.png", "kernels.png"]
    assert all(png_nonblank(p) for p in paths)


def test_explain_rejects_unknown_method(saved_run, images):
    from neuralsight.errors import UserError
    from neuralsight.tasks.base import SavedRun

    saved = SavedRun.open(saved_run)
    with pytest.raises(UserError, match="--method gates does not apply"):
        saved.task.explain(saved, [images["gray"]], saved.path / "ex", T.ExplainOptions(method="gates"))


def test_params_cli_default_is_the_lecture_number():
    res = CliRunner().invoke(app, ["params", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert rows[0]["weights"] == 1_638_400 and rows[1]["weights"] == 9
    res = CliRunner().invoke(app, ["params", "--size", "64", "--hidden", "10", "--json"])
    assert json.loads(res.output)[0]["weights"] == 64 * 64 * 10


def test_params_cli_for_preset_and_run(saved_run):
    res = CliRunner().invoke(app, ["params", "lecture", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["total_params"] == 421_642
    res = CliRunner().invoke(app, ["params", str(saved_run), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["total_params"] == 421_642
    res = CliRunner().invoke(app, ["params", "nonsense"])
    assert res.exit_code == 2 and "neither a run directory nor a CNN preset" in res.output


def test_filters_cli_image_pool_and_custom_kernel(images, tmp_path):
    out = tmp_path / "f"
    res = CliRunner().invoke(app, ["filters", str(images["rgb"]), "--pool", "avg,max,min", "-k", "sobel_x,gaussian:1",
                                   "-k", "1,0,-1;2,0,-2;1,0,-1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert png_nonblank(out / "filters.png") and png_nonblank(out / "filters_pool.png")
    res = CliRunner().invoke(app, ["filters", "--signal", "synthetic", "--out", str(out)])
    assert res.exit_code == 0 and png_nonblank(out / "filters_signal.png")


def test_filters_panels_are_annotated_with_shapes():
    from neuralsight.viz.filters import filter_image, pool_image

    img = torch.rand(28, 28)
    titles = [t for t, _ in filter_image(img, [("sobel_x", torch.ones(3, 3))])]
    assert "sobel_x: 28x28 -> 26x26 (valid 3x3 conv)" in titles
    assert titles[-1].startswith("gradient magnitude")
    pools = [t for t, _ in pool_image(img, ["min"])]
    assert pools[1] == "min pool 2x2: 28x28 -> 14x14"


def test_filters_signal_csv(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("day,cases\n" + "\n".join(f"{i},{i * i % 17}" for i in range(50)))
    res = CliRunner().invoke(app, ["filters", "--signal", f"{csv}:cases", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["filters", "--signal", f"{csv}:deaths", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no column 'deaths'" in res.output


def test_filters_errors():
    res = CliRunner().invoke(app, ["filters", "/nonexistent/x.png"])
    assert res.exit_code == 2 and "no such file" in res.output
    res = CliRunner().invoke(app, ["filters", "--signal", "synthetic", "--mode", "diagonal"])
    assert res.exit_code == 2 and "not a convolution mode" in res.output


def test_image_folder_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    from neuralsight.data.imagefolder import load_image_folder

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(tmp_path / "d" / c / f"{i}.png")
    (tmp_path / "d" / "dog" / "bad.png").write_bytes(b"broken")
    warnings = []
    classes, (xtr, ytr), (xte, yte) = load_image_folder(tmp_path / "d", (8, 8), 3, 0.2, warn=warnings.append)
    assert classes == ["cat", "dog"]
    assert xtr.shape[1:] == (3, 8, 8) and len(xtr) + len(xte) == 10 and len(xte) == 2
    assert "skipped 1 unreadable" in warnings[0]
    assert len(list((tmp_path / "cache" / "imagefolder").glob("*.npz"))) == 1  # decoded once, cached
    again = load_image_folder(tmp_path / "d", (8, 8), 3, 0.2, warn=warnings.append)
    np.testing.assert_array_equal(again[1][0], xtr)
    assert len(warnings) == 1


class _Sided(torch.nn.Module):
    """Logits (left column mean, right column mean): a mirror image swaps them, so TTA is visible. Its
    ``predict_proba`` is the CNN's own, which ``predict_split`` calls for TTA."""

    from neuralsight.models.cnn import CNN
    predict_proba = CNN.predict_proba

    def forward(self, x):
        return torch.stack([x[..., 0].mean((1, 2)), x[..., -1].mean((1, 2))], dim=1) * 4


def test_flip_tta_averages_the_image_and_its_mirror_image():
    from neuralsight.data.classification import Split
    from neuralsight.tasks.classifying import predict_split

    x = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    x[0, ..., 0], x[1, ..., -1] = 255, 255           # left bright, right bright, blank
    split = Split(x, torch.tensor([0, 0, 1]))
    plain = predict_split(_Sided(), split, 2)
    assert plain["prob"][0, 0] == pytest.approx(torch.tensor([4.0, 0.0]).softmax(0)[0].item())
    assert plain["pred"].tolist() == [0, 1, 0]
    both = predict_split(_Sided(), split, 2, tta=True)
    assert torch.allclose(both["prob"], torch.full((3, 2), 0.5))   # by symmetry, every image scores 1/2 : 1/2
    assert torch.allclose(both["loss"], torch.full((3,), math.log(2)))
    assert torch.allclose(plain["loss"][2], torch.tensor(math.log(2)))


def test_cnn_predict_proba_with_flip_tta_is_the_mean_over_the_mirror_image():
    from neuralsight.models import create_model

    torch.manual_seed(0)
    model = create_model("cnn", **T.build_model_kwargs(T.ModelConfig(arch="lecture"), 1, 10, (28, 28), [0.3],
                                                       [0.35])).eval()
    x = torch.rand(4, 1, 28, 28)
    want = (model.predict_proba(x) + model.predict_proba(x.flip(-1))) / 2
    assert torch.allclose(model.predict_proba(x, flip_tta=True), want, atol=1e-6)
    assert not torch.allclose(model.predict_proba(x), want, atol=1e-4)

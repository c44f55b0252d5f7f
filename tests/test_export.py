"""``neuralsight export`` (issue 15): every task's models to ONNX and TorchScript, checked against PyTorch.

The runs are the v0.1 fixtures (copied to a temporary folder) and tiny runs trained here with other cells and
architectures. Besides the check ``export`` runs itself, each exported file is compared here with the task's own
inference path (predict, sliding windows, CharRNN.generate, the backtest's forecasts), through onnxruntime or
torch.jit directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data, shared_folder
from typer.testing import CliRunner

from neuralsight.cli import app
from neuralsight.export import ADAPTERS, FORMATS, read_metadata
from neuralsight.tasks.base import SavedRun, list_tasks

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"
SNIPPET = ROOT / "docs" / "snippets" / "onnxruntime_classify.py"
DATA = {"classify": "fashion-mnist", "textgen": "romeo-juliet", "segment": "oxford-pets",
        "segment3d": "msd-hippocampus", "forecast": "covid-hu"}
TEST_ONLY = {"toy", "toymissing"}  # registered by tests/engine_toy.py


def load_file(fmt: str, path: Path):
    """An exported file, loaded directly by onnxruntime or torch.jit: a function from numpy inputs to outputs."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda *inputs: session.run(None, dict(zip(names, inputs, strict=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path))

    def run(*inputs):
        with torch.no_grad():
            out = module(*[torch.from_numpy(np.asarray(x)) for x in inputs])
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    return run


def export(run: Path, fmt: str, *args: str):
    return CliRunner().invoke(app, ["export", str(run), "--format", fmt, *args])


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for task in DATA:
        (src,) = (FIXTURES / task).iterdir()
        runs[task] = Path(shutil.copytree(src, root / task / src.name))
    return runs


@pytest.fixture(scope="module")
def exported(fixture_runs):
    """``exported(task, fmt)``: the fixture run of ``task`` exported once per module; the CLI's JSON result."""
    done: dict = {}

    def get(task: str, fmt: str) -> dict:
        if (task, fmt) not in done:
            shared_data(DATA[task])
            res = export(fixture_runs[task], fmt, "--json")
            assert res.exit_code == 0, res.output
            done[task, fmt] = json.loads(res.stdout)
        return done[task, fmt]

    return get


def test_every_task_has_an_exporter():
    assert set(ADAPTERS) == set(list_tasks()) - TEST_ONLY
    assert FORMATS == ("onnx", "torchscript")


# ---- the v0.1 fixture runs, both formats ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("task", sorted(DATA))
def test_fixture_run_exports_and_passes_its_check(task, fmt, exported, fixture_runs):
    result = exported(task, fmt)
    path, sidecar = Path(result["path"]), Path(result["metadata_path"])
    assert result["passed"] and path.is_file() and sidecar == path.with_name(path.name + ".json")
    assert path.parent == fixture_runs[task] / "export" and path.suffix == {"onnx": ".onnx", "torchscript": ".pt"}[fmt]
    check = result["check"]
    assert check["failure"] is None and 0 <= check["max_abs_diff"] <= check["tolerance"]["atol"] * 100
    assert check["cases"] >= 2 and check["runtime"].startswith("onnxruntime" if fmt == "onnx" else "torch.jit")
    meta = json.loads(sidecar.read_text())
    assert read_metadata(fmt, path) == meta     # the file carries what the JSON beside it says
    assert meta["task"] == task and meta["format"] == fmt and meta["check"]["max_abs_diff"] == check["max_abs_diff"]
    assert [i["name"] for i in meta["inputs"]] and meta["inputs"][0]["shape"][0] == "batch"
    state = SavedRun.open(fixture_runs[task], device="cpu").state()
    assert meta["architecture"] == {"name": state["model"]["name"], "kwargs": state["model"]["kwargs"]} \
        or task == "forecast"
    if task == "classify":
        classes = json.loads((fixture_runs[task] / "classes.json").read_text())["classes"]
        assert meta["classes"] == classes and meta["input_size"] == [28, 28] and meta["channels"] == 1
        assert meta["normalisation"]["mean"] == state["model"]["kwargs"]["input_mean"]
    elif task == "textgen":
        assert meta["vocab"] == state["model"]["vocab"] and meta["state"]["names"] == ["h", "c"]
    elif task == "segment":
        assert meta["class_names"] == ["background", "pet", "border"] and meta["size_multiple"] == 4
        assert meta["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    elif task == "segment3d":
        assert meta["patch_size"] == [64, 64, 64] and meta["inputs"][0]["shape"] == ["batch", 1, "depth", "height",
                                                                                        "width"]
    else:
        assert meta["models"] == ["lstm", "mlp"] and meta["quantiles"] == [0.1, 0.5, 0.9] and meta["horizon"] == 14
        assert [o["name"] for o in meta["outputs"]] == ["lstm", "mlp"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_classify_export_gives_predicts_probabilities(fmt, exported, fixture_runs):
    from neuralsight.data.imagefolder import preprocess
    from neuralsight.data.images import open_image
    from neuralsight.tasks.classify import PredictOptions

    path = Path(exported("classify", fmt)["path"])
    photo = shared_folder("fashion-photos") / "Bag" / "10320.jpg"
    saved = SavedRun.open(fixture_runs["classify"], device="cpu")
    (row,) = saved.task.predict(saved, [photo], Path("unused"), PredictOptions(top_k=10))
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["trim_margins"] is False and "margins" not in meta["preprocessing"]  # 0.1.0 did not trim
    assert meta["flip_tta"] is False
    x = preprocess(open_image(photo, mode=None), (28, 28), 1, "auto", meta["trim_margins"])[None]
    x = x.astype(np.float32) / 255
    run = load_file(fmt, path)
    (probabilities,) = run(x)
    by_class = {t["class"]: t["probability"] for t in row["top"]}
    classes = json.loads((fixture_runs["classify"] / "classes.json").read_text())["classes"]
    np.testing.assert_allclose(probabilities[0], [by_class[c] for c in classes], atol=1e-5)
    batch = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)   # another batch size
    (got,) = run(batch)
    np.testing.assert_allclose(got, saved.model().predict_proba(torch.from_numpy(batch)).numpy(), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_segment_export_masks_a_photo_as_predict_does_at_any_size(fmt, exported, fixture_runs):
    import torch.nn.functional as F

    from neuralsight.data.images import fit_size, open_image
    from neuralsight.tasks.segmentation import MEAN, STD, segment_image

    path = Path(exported("segment", fmt)["path"])
    saved = SavedRun.open(fixture_runs["segment"], device="cpu")
    model, size = saved.model(), saved.cfg.data.image_size
    image = open_image(shared_data("oxford-pets") / "images" / "Abyssinian_1.jpg")         # (H, W, 3)
    with torch.no_grad():
        want = segment_image(model, image, size, torch.device("cpu"))                     # (H, W)
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
    small = F.interpolate(x, size=fit_size(*image.shape[:2], size), mode="bilinear", antialias=True,
                          align_corners=False) / 255
    run = load_file(fmt, path)
    logits, classes = run(small.numpy())
    assert (classes == logits.argmax(1)).all()
    back = F.interpolate(torch.from_numpy(logits), size=image.shape[:2], mode="bilinear", align_corners=False)
    assert (back[0].argmax(0).numpy() == want).mean() > 0.999
    odd = torch.rand(3, 3, 37, 45)                          # sizes 2**depth does not divide, batch 3
    logits, _ = run(odd.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(logits, model((odd - MEAN) / STD).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_segment3d_export_slides_over_a_volume_as_the_task_does(fmt, exported, fixture_runs):
    from neuralsight.data.volumes import load_case
    from neuralsight.engine.sliding import sliding_window_inference
    from neuralsight.tasks.segment3d import volume_options
    from neuralsight.tasks.segmentation import infer_logits

    result = exported("segment3d", fmt)
    path, meta = Path(result["path"]), json.loads(Path(result["metadata_path"]).read_text())
    saved = SavedRun.open(fixture_runs["segment3d"], device="cpu")
    case = load_case(sorted((shared_data("msd-hippocampus") / "imagesTr").glob("*.nii.gz"))[0], None,
                     volume_options(saved.cfg))

    run = load_file(fmt, path)

    def exported_net(windows):
        return torch.from_numpy(run(windows.numpy())[0])

    want = infer_logits(saved.model(), case.image, saved.cfg, torch.device("cpu"))           # (K, D, H, W)
    got = sliding_window_inference(case.image[None], meta["patch_size"], exported_net,
                                   overlap=meta["sliding_window"]["overlap"], device="cpu")[0]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # The training patch, smaller than the volume: several overlapping windows go through the exported graph.
    patch = saved.cfg.data.patch_size
    with torch.no_grad():
        want = sliding_window_inference(case.image[None], patch, saved.model(), overlap=0.25)
    got = sliding_window_inference(case.image[None], patch, exported_net, overlap=0.25)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def greedy_with_exported(fmt: str, path: Path, meta: dict, seed: str, length: int) -> str:
    """Greedy generation with the exported step alone: numpy and the runtime, the vocabulary from the metadata."""
    vocab = meta["vocab"]
    layers, _, hidden = meta["state"]["shape"]
    state = [np.zeros((layers, 1, hidden), dtype=np.float32) for _ in meta["state"]["names"]]
    ids = np.array([[vocab.index(ch) for ch in seed]], dtype=np.int64)
    run, text = load_file(fmt, path), ""
    for _ in range(length):
        logits, *state = run(ids, *state)
        ids = logits[:, -1:].argmax(-1).astype(np.int64)                                # (1, 1)
        text += vocab[int(ids[0, 0])]
    return text


def greedy_with_torch(saved, seed: str, length: int) -> str:
    from neuralsight.data.text import Vocab

    vocab = Vocab.from_json(saved.state()["model"]["vocab"])
    return "".join(vocab.chars[i] for i in saved.model().generate(vocab.encode(seed), length, top_k=1))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_textgen_export_generates_what_charrnn_generate_does(fmt, exported, fixture_runs):
    result = exported("textgen", fmt)
    meta = json.loads(Path(result["metadata_path"]).read_text())
    saved = SavedRun.open(fixture_runs["textgen"], device="cpu")
    want = greedy_with_torch(saved, "ROMEO:", 60)
    assert greedy_with_exported(fmt, Path(result["path"]), meta, "ROMEO:", 60) == want and len(want) == 60


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_forecast_export_forecasts_what_the_backtest_does(fmt, exported, fixture_runs):
    from neuralsight.data.series import Transform, load_series, split_series
    from neuralsight.models.forecaster import forecast_origins

    result = exported("forecast", fmt)
    saved = SavedRun.open(fixture_runs["forecast"], device="cpu")
    cfg, m = saved.cfg, saved.cfg.model
    info = saved.read_json("forecast.json")
    series, raw = load_series(cfg.data)
    p = split_series(series, cfg.data, m.input_window, m.horizon, raw, transform=Transform.from_dict(info["transform"]))
    models = {"lstm": saved.model(), "mlp": saved.model("mlp")}
    nominal = m.quantiles[-1] - m.quantiles[0]
    want = forecast_origins(models, p, torch.tensor([len(p.z) - 1]), m.horizon, m.input_window, m.quantiles,
                            nominal=nominal)
    window = np.asarray(p.values[-m.input_window:], dtype=np.float64)[None]              # (1, W)
    got = dict(zip(["lstm", "mlp"], load_file(fmt, Path(result["path"]))(window), strict=True))
    for kind in models:
        for q, key in ((0, "lower"), (1, "point"), (2, "upper")):
            np.testing.assert_allclose(got[kind][0, :, q], np.asarray(want[kind][key][0]), rtol=1e-5, atol=1e-4)


# ---- tiny runs trained here: other cells, architectures and data ---------------------------------------

TINY = {
    "textgen-gru": ("textgen", ['model.cell="gru"', "model.num_layers=2", "model.hidden_size=16", "train.steps=3",
                                "samples.length=10"], None),
    "textgen-rnn": ("textgen", ['model.cell="rnn"', "model.hidden_size=16", "train.steps=3", "samples.length=10"],
                    None),
    "forecast-gru-rnn": ("forecast", ['model.models=["gru","rnn"]', "model.hidden_size=8", "train.steps=3",
                                      "position.enabled=false"], "rnn"),
    "segment3d-unet3d": ("segment3d", ['model.name="unet3d"', "model.base_channels=2", "model.depth=2",
                                       "train.steps=2", "data.limit=6", "eval.max_cases=1"], None),
    "segment-bilinear": ("segment", ['model.up="bilinear"', "model.base_channels=4", "model.depth=3",
                                     "train.steps=2", "data.max_train=8", "data.max_val=4", "data.image_size=40"],
                         None),
    "classify-folder": ("classify", ['data.dataset="folder"', "data.image_size=32", "data.channels=3",
                                     'model.arch="custom"', 'model.stages=["c4 k3 max2"]', "model.dense=[8]",
                                     "train.steps=2", "data.val_size=10", "data.tta=true"], None),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_trained_run_exports_in_both_formats(name, tmp_path):
    from neuralsight.tasks.base import train

    task, overrides, model = TINY[name]
    if name == "classify-folder":
        overrides = [*overrides, f'data.data_dir="{shared_folder("fashion-photos").as_posix()}"']
    else:
        shared_data(DATA[task])
    run = train(task, overrides=[*overrides, 'train.device="cpu"', "train.progress=false"], quick=True,
                out=tmp_path / "runs", name="tiny")
    for fmt in FORMATS:
        res = export(run, fmt, "--json", *(["--model", model] if model else []))
        assert res.exit_code == 0, res.output
        result = json.loads(res.stdout)
        assert result["passed"] and Path(result["path"]).is_file(), result
        meta = read_metadata(fmt, Path(result["path"]))
        if name == "classify-folder":   # a folder run trained on untrimmed images and records so
            assert meta["trim_margins"] is False and meta["flip_tta"] is True   # the graph averages the mirror
            assert json.loads((run / "classes.json").read_text())["preprocess"] == {"trim_margins": False}
        if task == "textgen":
            saved = SavedRun.open(run, device="cpu")
            assert greedy_with_exported(fmt, Path(result["path"]), meta, "ROMEO:", 20) == \
                greedy_with_torch(saved, "ROMEO:", 20)
        if model:
            assert meta["models"] == [model] and Path(result["path"]).name == f"forecast-{model}" + \
                {"onnx": ".onnx", "torchscript": ".pt"}[fmt]


# ---- failures ------------------------------------------------------------------------------------------

def _logits_spec(logits: torch.Tensor):
    from neuralsight.export.spec import ExportSpec, Tolerance

    return ExportSpec("t", None, ["image"], ["logits", "classes"], {}, [(logits,)],
                      lambda x: (x, x.argmax(1)), "a tensor", {}, Tolerance(1e-4, 1e-4), {"classes": ("logits", 1)})


def test_check_lets_an_argmax_flip_only_where_two_scores_tie_within_the_tolerance():
    from neuralsight.export.core import compare

    logits = torch.tensor([[[[1.0, 5.0]], [[1.00001, 0.0]]]])       # (1, 2, 1, 2): a near tie, then a clear 5 vs 0
    spec = _logits_spec(logits)
    near = compare(spec, lambda case: [logits.numpy(), np.array([[[0, 0]]])], "test")   # flips the near tie
    assert near.passed and near.outputs["classes"]["mismatched"] == 1 and near.max_abs_diff == 0
    clear = compare(spec, lambda case: [logits.numpy(), np.array([[[1, 1]]])], "test")  # flips the clear one too
    assert not clear.passed and "differs from PyTorch at 1 of 2 positions" in clear.failure


def test_check_names_the_worst_value_beyond_the_tolerance():
    from neuralsight.export.core import compare

    logits = torch.tensor([[[[1.0, 5.0]], [[1.00001, 0.0]]]])
    spec = _logits_spec(logits)
    off = logits.numpy().copy()
    off[0, 0, 0, 1] += 6e-4                                          # allowed there: 1e-4 + 1e-4 x 5 = 6e-4
    assert compare(spec, lambda case: [off, np.array([[[1, 0]]])], "test").passed
    off[0, 0, 0, 1] += 1e-5
    check = compare(spec, lambda case: [off, np.array([[[1, 0]]])], "test")
    assert not check.passed and check.max_abs_diff == pytest.approx(6.1e-4, rel=1e-3)
    assert "output 'logits' of case 1 differs by 0.00061 where PyTorch gives 5" in check.failure
    bad = compare(spec, lambda case: [off[..., :1], np.array([[[1]]])], "test")
    assert "has shape [1, 2, 1, 1], PyTorch's [1, 2, 1, 2]" in bad.failure


def test_a_graph_that_differs_from_pytorch_fails_with_the_number_and_writes_nothing(fixture_runs, monkeypatch,
                                                                                   tmp_path):
    from neuralsight.export import classify

    shared_data("fashion-mnist")
    forward = classify.ClassifierGraph.forward
    monkeypatch.setattr(classify.ClassifierGraph, "forward", lambda self, image: forward(self, image) + 3e-3)
    out = tmp_path / "out" / "model.onnx"
    res = export(fixture_runs["classify"], "onnx", "--out", str(out))
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "does not match PyTorch" in text and "nothing was written" in text
    number = float(re.search(r"largest absolute difference ([0-9.e+-]+)", text)[1])
    assert number == pytest.approx(3e-3, rel=1e-3) and "tolerance 1e-05" in text
    assert not out.parent.exists() or not any(out.parent.iterdir())   # neither the model, its JSON, nor a temp


def test_onnx_without_its_packages_names_the_extra(fixture_runs, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime now raises ImportError
    out = tmp_path / "model.onnx"
    res = export(fixture_runs["classify"], "onnx", "--out", str(out))
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "onnxruntime is not installed" in text and "pip install 'neuralsight[export]'" in text
    assert not out.exists()


@pytest.mark.slow
def test_torchscript_needs_neither_onnx_package(fixture_runs, monkeypatch, tmp_path):
    shared_data("fashion-mnist")
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    res = export(fixture_runs["classify"], "torchscript", "--out", str(tmp_path / "model.pt"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "model.pt.json").is_file()


@pytest.mark.parametrize("task, args, message", [
    ("classify", ["--format", "tflite"], "--format tflite is not an export format"),
    ("classify", ["--format", "onnx", "--model", "lstm"], "--model lstm does not apply to a classify run"),
    ("forecast", ["--format", "onnx", "--model", "gru"], "--model gru is not a model of this run (choose one of "
                                                          "lstm, mlp)"),
    ("classify", ["--format", "onnx", "--out", "meta.json"], "the metadata go to <model file>.json"),
])
def test_bad_options_are_refused_in_one_line(task, args, message, fixture_runs):
    res = CliRunner().invoke(app, ["export", str(fixture_runs[task]), *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


# ---- the README's example ------------------------------------------------------------------------------

def test_readme_example_runs_with_onnxruntime_alone(fixture_runs, tmp_path):
    """The README's lines, exactly (docs/snippets/onnxruntime_classify.py), on an exported model and a picture,
    in a fresh interpreter that never imports torch or neuralsight."""
    from PIL import Image

    from neuralsight.data.catalog import locate
    from neuralsight.data.idx import load_mnist_split

    shared_data("fashion-mnist")
    res = export(fixture_runs["classify"], "onnx", "--out", str(tmp_path / "classify.onnx"))
    assert res.exit_code == 0, res.output
    images, labels = load_mnist_split(locate("fashion-mnist"), "test")
    sneaker = np.array(images[int(np.flatnonzero(labels == 7)[0])])                     # (28, 28) uint8
    Image.fromarray(sneaker).save(tmp_path / "sneaker.png")
    probe = (f"import runpy, sys; runpy.run_path({str(SNIPPET)!r}); "
             "print(sorted(m for m in ('torch', 'neuralsight') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    printed, imported = done.stdout.strip().splitlines()
    assert imported == "[]"
    saved = SavedRun.open(fixture_runs["classify"], device="cpu")
    p = saved.model().predict_proba(torch.from_numpy(sneaker).float()[None, None] / 255)[0]
    classes = json.loads((fixture_runs["classify"] / "classes.json").read_text())["classes"]
    assert printed == f"{classes[int(p.argmax())]} {float(p.max()):.3f}"


def test_readme_shows_exactly_the_tested_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- export-example: docs/snippets/onnxruntime_classify.py -->"
    if marker not in readme:
        pytest.skip("README.md has no export example yet")
    block = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", readme, re.S)
    assert block and block[1] == SNIPPET.read_text(encoding="utf-8")

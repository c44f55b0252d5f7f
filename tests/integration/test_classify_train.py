"""`neuralsight train classify --quick` on the real Fashion-MNIST (Debian copy), cut to a few steps."""

from __future__ import annotations

import json

import pytest
from helpers import png_nonblank, report_ok
from typer.testing import CliRunner

from neuralsight.cli import app


@pytest.mark.slow
def test_train_quick_writes_complete_run_and_report(tmp_path):
    from neuralsight.data.catalog import find

    if find("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "runs"
    res = CliRunner().invoke(app, ["train", "classify", "--quick", "--steps", "25", "--batch-size", "128", "--out", str(out),
                                   "--no-progress", "--set", "data.val_size=500",
                                   "--set", "data.train_limit=8000"])
    assert res.exit_code == 0, res.output
    (run,) = list((out / "classify").iterdir())
    for name in ("config.toml", "metrics.jsonl", "summary.json", "report.html", "classes.json", "eval_test.json",
                 "checkpoints/best.safetensors", "checkpoints/last.json"):
        assert (run / name).is_file(), name
    for fig in ("confusion_matrix.png", "gallery.png", "top_losses.png", "training_curves.png"):
        assert png_nonblank(run / "figures" / fig), fig
    assert report_ok(run)
    assert json.loads((run / "classes.json").read_text())["preprocess"] == {"trim_margins": True}  # predict trims
    html = (run / "report.html").read_text()
    for part in ("Confusion matrix", "Per-class precision", "Most-confused pairs", "Prediction gallery"):
        assert part in html
    summary = json.loads((run / "summary.json").read_text())
    assert summary["headline"]["name"] == "test_acc"
    assert summary["headline"]["value"] > 0.4  # 25 steps already learn far above chance (0.1)
    assert json.loads((run / "eval_test.json").read_text())["n"] == 10_000

    res = CliRunner().invoke(app, ["eval", str(run), "--json", "--split", "val"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 500
    assert png_nonblank(run / "figures" / "val_confusion_matrix.png")
    res = CliRunner().invoke(app, ["explain", str(run), "--index", "3", "--method", "gradcam,features",
                                   "--out", str(tmp_path / "ex")])
    assert res.exit_code == 0, res.output
    assert all(png_nonblank(p) for p in (tmp_path / "ex").glob("*.png"))

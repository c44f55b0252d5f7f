"""`neuralsight train textgen --quick` on the real Romeo and Juliet, then generate / eval / explain (in-process)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_data
from helpers import png_nonblank, report_ok
from typer.testing import CliRunner


@pytest.mark.slow
def test_train_quick_generate_explain_on_romeo_and_juliet(runs_root):
    shared_data("romeo-juliet")
    from neuralsight.cli import app

    cli = CliRunner()
    res = cli.invoke(app, ["train", "textgen", "--quick", "--steps", "12", "--out", str(runs_root), "--no-progress",
                           "--set", "train.eval_every=4", "--set", "samples.stages=[0, 4, 8]",
                           "--set", "samples.length=60", "--set", "model.hidden_size=128",
                           "--set", "train.threads=1", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    run = next((runs_root / "textgen").iterdir())
    stages = json.loads((run / "samples" / "stages.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in stages] == [0, 4, 8, 12] and run.name.endswith("-romeo")
    assert stages[-1]["label"] == "further training (best, step 12)"
    assert all(s["seed"] == "ROMEO:" and len(s["text"]) == 60 for s in stages)
    assert stages[0]["val_loss"] > stages[-1]["val_loss"]            # training helped
    for s in stages:
        assert (run / "samples" / s["file"]).read_text(encoding="utf-8").startswith("ROMEO:")
    for fig in ("gates.png", "unfold.png", "training_curves.png"):
        assert png_nonblank(run / "figures" / fig), fig
    assert report_ok(run)
    html = (run / "report.html").read_text(encoding="utf-8")
    for words in ("Samples at each training stage", "untrained", "forget gate", "Unfolding in time",
                  "nanoGPT&#x27;s protocol"):
        assert words in html
    summary = json.loads((run / "summary.json").read_text())
    assert summary["headline"]["name"] == "val bits/char" and summary["headline"]["split"] == "val"
    val = summary["metrics"]["val"]
    assert val["val_bpc"] == pytest.approx(val["val_loss"] / 0.6931471805599453)
    assert summary["headline"]["value"] == val["val_bpc"] and summary["metrics"]["test"] == {}

    args = ["generate", str(run), "--seed", "ROMEO:", "--length", "40", "--rng-seed", "3"]
    first, second = cli.invoke(app, args), cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout and first.stdout.startswith("ROMEO:")
    assert len(first.stdout.rstrip("\n")) >= 46

    bad = cli.invoke(app, ["generate", str(run), "--seed", "ROMEO: \u4e16"])
    assert bad.exit_code == 2 and "never seen" in bad.output and "\u4e16" in bad.output

    ev = cli.invoke(app, ["eval", str(run), "--split", "val", "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["val_loss"] == pytest.approx(val["val_loss"], rel=1e-2)
    ev = cli.invoke(app, ["eval", str(run), "--split", "test"])
    assert ev.exit_code == 2 and "nanoGPT's single held-out split" in ev.output

    out = runs_root / "explained"
    ex = cli.invoke(app, ["explain", str(run), "--text", "JULIET.\nO Romeo, Romeo!", "--out", str(out)])
    assert ex.exit_code == 0, ex.output
    assert png_nonblank(out / "gates.png") and png_nonblank(out / "unfold.png")
    assert "forget gate" in (out / "gates.html").read_text(encoding="utf-8")
    ex = cli.invoke(app, ["explain", str(run), "--method", "saliency"])
    assert ex.exit_code == 2 and "expected one of ['auto', 'gates']" in ex.output

"""The app's handlers over a real (tiny) classify run, and the Gradio UI builds without launching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from neuralsight.cli import app


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    from neuralsight.data.catalog import find

    if find("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("runs")
    res = CliRunner().invoke(app, ["train", "classify", "--quick", "--steps", "4", "--out", str(out), "--no-progress",
                                   "--set", "data.val_size=200", "--set", "data.train_limit=2000"])
    assert res.exit_code == 0, res.output
    (run,) = list((out / "classify").iterdir())
    return out, run


@pytest.mark.slow
def test_handlers_list_show_and_predict(classify_run, tmp_path):
    from neuralsight import app as ui

    root, run = classify_run
    assert ui.list_run_dirs(root) == [str(run)]
    text, figures = ui.run_overview(str(run))
    assert "test_acc" in text and figures and all(f.endswith(".png") for f, _ in figures)

    img = tmp_path / "shirt.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)).save(img)
    work = ui.Workspace()
    msg, headers, rows, images, files = ui.run_predict(str(run), str(img), work)
    assert msg == "1 result(s)" and headers[:3] == ["input", "class", "probability"], (msg, headers)
    assert rows[0][0] == str(img) and rows[0][1] in json.loads((run / "classes.json").read_text())["classes"]
    assert len(rows[0][3].split(", ")) == 3  # the top-3 classes

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    msg, *_ = ui.run_predict(str(run), str(bad), work)
    assert "bad.png" in msg and "not an image" in msg, msg

    assert ui.run_predict("", None, work)[0].startswith("Pick a run")
    assert "Upload a file" in ui.run_predict(str(run), None, work)[0]
    previous = work.current
    ui.run_predict(str(run), str(img), work)
    assert previous is not None and not previous.exists()  # each click's folder is removed by the next
    work.close()
    assert not work.root.exists()


@pytest.mark.slow
def test_ui_builds(classify_run):
    pytest.importorskip("gradio")
    from neuralsight import app as ui

    root, _ = classify_run
    blocks = ui.build(root)
    assert blocks is not None and hasattr(blocks, "launch")


def test_app_command_is_registered():
    res = CliRunner().invoke(app, ["app", "--help"])
    assert res.exit_code == 0 and "--port" in res.output

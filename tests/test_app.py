"""The app (issue 10 items 15-17): its handlers over real tiny runs, the server it launches (figures served from
a runs folder outside the working directory, temporary files removed), and the whole UI in a real browser:
Playwright driving Debian's chromium, never a downloaded browser."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from neuralsight.cli import app
from neuralsight.viz.palette import class_colour

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"]


def _train(out: Path, task: str, *sets: str) -> Path:
    res = CliRunner().invoke(app, ["train", task, "--quick", "--out", str(out), "--no-progress",
                                   *[x for s in sets for x in ("--set", s)]])
    assert res.exit_code == 0, res.output
    (run,) = list((out / task).iterdir())
    return run


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder outside the working directory (the tests run from the checkout)."""
    root = tmp_path_factory.mktemp("app") / "runs"
    assert not root.resolve().is_relative_to(Path.cwd().resolve())
    return root


@pytest.fixture(scope="module")
def classify_run(runs_root):
    from neuralsight.data.catalog import find

    if find("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return runs_root, _train(runs_root, "classify", "train.steps=4", "data.val_size=200", "data.train_limit=2000")


@pytest.fixture(scope="module")
def segment_run(runs_root):
    from conftest import shared_data

    shared_data("oxford-pets")
    return _train(runs_root, "segment", "train.steps=2", "model.base_channels=4", "model.depth=2",
                  "data.max_train=8", "data.max_val=4", "data.image_size=32")


@pytest.fixture(scope="module")
def textgen_run(tmp_path_factory):
    from conftest import shared_data

    shared_data("romeo-juliet")
    root = tmp_path_factory.mktemp("textgen") / "runs"
    return root, _train(root, "textgen", "model.hidden_size=32", "train.steps=4", "samples.length=20")


def _image(path: Path, size=(30, 40)) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


# ---- handlers ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_handlers_list_show_and_predict(classify_run, tmp_path):
    from neuralsight import app as ui

    root, run = classify_run
    assert ui.list_run_dirs(root) == [str(run)]
    text, figures = ui.run_overview(str(run))
    assert "test_acc" in text and "images/s" in text and figures and all(f.endswith(".png") for f, _ in figures)

    img = _image(tmp_path / "shirt.png")
    work = ui.Workspace()
    r = ui.run_predict(str(run), str(img), work, "session-a")
    assert r.message == "1 result(s)" and r.headers[:3] == ["input", "class", "probability"], r
    classes = json.loads((run / "classes.json").read_text())["classes"]
    assert r.rows[0][0] == str(img) and r.rows[0][1] in classes
    assert len(r.rows[0][3].split(", ")) == 3  # the top-3 classes
    (results,) = r.files  # classify writes no files: the table itself is offered, as CSV
    with open(results, newline="") as f:
        assert list(csv.reader(f)) == [r.headers, *r.rows]

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    r = ui.run_predict(str(run), str(bad), work, "session-a")
    assert "bad.png" in r.message and "not an image" in r.message, r.message

    assert ui.run_predict("", None, work).message.startswith("Pick a run")
    assert ui.run_predict(str(run), None, work).message.startswith("Upload a file to apply the model to")
    first = work.current["session-a"]
    ui.run_predict(str(run), str(img), work, "session-b")
    assert first.exists()  # another browser session's click leaves this one's results alone
    ui.run_predict(str(run), str(img), work, "session-a")
    assert not first.exists() and work.current["session-a"].exists()  # the session's next click removes it
    work.clear("session-a")
    assert "session-a" not in work.current
    work.close()
    assert not work.root.exists()


@pytest.mark.slow
def test_generate_handler_takes_length_temperature_and_seed(textgen_run, monkeypatch):
    from neuralsight import app as ui

    root, run = textgen_run
    text = ui.run_generate(str(run), "ROMEO", 50, 0.8, 0, 1)
    assert text.startswith("ROMEO") and len(text) == len("ROMEO") + 50
    assert ui.run_generate(str(run), "ROMEO", 50, 0.8, 0, 1) == text          # the sampling seed repeats
    assert ui.run_generate(str(run), "ROMEO", 50, 1.9, 0, 1) != text          # the temperature is used
    assert len(ui.run_generate(str(run), "ROMEO", 120, 0.8, 0, None)) == len("ROMEO") + 120
    assert ui.run_generate(str(run), "", 20, 0.8, 0, 1).startswith("ROMEO")   # the run's own seed
    assert ui.run_generate(str(run), "€", 20, 0.8, 0, 1).startswith("error: ")  # not in the run's vocabulary
    # The CLI's generate, on `latest:textgen`, gives the same text for the same options.
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(root))
    res = CliRunner().invoke(app, ["generate", "latest:textgen", "--seed", "ROMEO", "--length", "50",
                                   "--temperature", "0.8", "--rng-seed", "1"])
    assert res.exit_code == 0 and res.stdout == text + "\n", res.output


@pytest.mark.slow
def test_params_reads_latest(classify_run, monkeypatch):
    root, run = classify_run
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(root))
    res = CliRunner().invoke(app, ["params", "latest", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == f"run {run.name}"


@pytest.mark.slow
def test_ui_builds_with_galleries_that_do_not_crop(classify_run):
    pytest.importorskip("gradio")
    import gradio as gr

    from neuralsight import app as ui

    root, _ = classify_run
    blocks = ui.build(root)
    galleries = [b for b in blocks.blocks.values() if isinstance(b, gr.Gallery)]
    assert {g.elem_id for g in galleries} == {"figures", "outputs"}
    assert all(g.object_fit == "contain" for g in galleries)
    blocks.workspace.close()


def test_app_command_is_registered():
    res = CliRunner().invoke(app, ["app", "--help"])
    assert res.exit_code == 0 and "--port" in res.output and "--root" in res.output


# ---- the server --------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.fixture
def served(classify_run, monkeypatch):
    """The app over the runs folder, on 127.0.0.1 and a free port, stopped after the test."""
    pytest.importorskip("gradio")
    from neuralsight import app as ui

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    root, _ = classify_run
    port = _free_port()
    demo = ui.launch(root, port=port, block=False)
    yield demo, f"http://127.0.0.1:{port}"
    ui.shutdown(demo)
    assert not demo.workspace.root.exists()  # every temporary file of the app is gone


@pytest.mark.slow
def test_server_serves_figures_from_a_root_outside_the_working_directory(served, classify_run, tmp_path):
    demo, url = served
    _, run = classify_run
    figure = sorted((run / "figures").glob("*.png"))[0]
    status, body = _get(f"{url}/gradio_api/file={figure.resolve()}")
    assert status == 200 and body == figure.read_bytes()
    private = tmp_path / "private.png"
    shutil.copy(figure, private)
    assert _get(f"{url}/gradio_api/file={private.resolve()}")[0] in (403, 404)  # nothing else is served


# ---- the whole UI in a browser -----------------------------------------------------------------------------

def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    executable = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                       if p and Path(p).is_file()), None)
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install -y chromium; .ci/run does)")
    return sync_playwright, executable


def _pick_run(page, run: Path, task: str) -> None:
    page.locator("#run input").click()
    page.get_by_role("option", name=str(run)).click()
    page.wait_for_function(f"() => document.querySelector('#summary').innerText.startsWith('{task}')",
                           timeout=60_000)


def _apply(page, image: Path, run: Path, upload: bool = True) -> None:
    """Upload ``image`` (or keep the one uploaded before), run ``run``'s model, wait until its results show."""
    if upload:
        page.locator("#upload input[type=file]").set_input_files(str(image))
    page.locator("#upload").get_by_text(image.stem).first.wait_for(timeout=60_000)  # uploaded
    page.locator("#go").click()
    # The message names the run whose results came back; it and every output arrive in one update.
    page.wait_for_function("(name) => { const m = document.querySelector('#message').innerText;"
                           " return m.includes('result') && m.includes(name); }", arg=run.name, timeout=120_000)


def _download(page, name: str) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.locator(f'#downloads a[download="{name}"]').click()
    return Path(info.value.path())


# Some: the gallery loads thumbnails below the fold lazily.
IMAGES_LOADED = "(sel) => [...document.querySelectorAll(sel + ' img')].some(i => i.complete && i.naturalWidth > 0)"


@pytest.mark.slow
def test_the_app_in_a_real_browser(served, classify_run, segment_run, tmp_path):
    sync_playwright, executable = _browser_or_skip()
    demo, url = served
    _, classify = classify_run
    image = _image(tmp_path / "shirt.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(url)
            page.wait_for_selector("#summary h3", timeout=60_000)
            # The figures of a run outside the working directory load, uncropped.
            page.wait_for_function(IMAGES_LOADED, arg="#figures", timeout=60_000)
            fits = page.eval_on_selector_all("#figures img", "els => els.map(e => getComputedStyle(e).objectFit)")
            assert fits and set(fits) == {"contain"}

            _pick_run(page, classify, "classify")
            _apply(page, image, classify)
            classes = json.loads((classify / "classes.json").read_text())["classes"]
            table = page.inner_text("#results")
            assert "class" in table and "probability" in table and any(c in table for c in classes), table
            with open(_download(page, "results.csv"), newline="") as f:
                rows = list(csv.reader(f))
            assert rows[0][:2] == ["input", "class"] and rows[1][1] in classes, rows
            first_click = next(iter(demo.workspace.current.values()))

            _pick_run(page, segment_run, "segment")
            _apply(page, image, segment_run, upload=False)  # the same upload, another run
            assert not first_click.exists()  # the session's previous click is cleaned up
            page.wait_for_function(IMAGES_LOADED, arg="#outputs", timeout=60_000)
            assert page.locator("#outputs img").count() >= 2  # the mask and the overlay
            mask_path = _download(page, "shirt_mask.png")
            (click,) = demo.workspace.current.values()
            assert mask_path.read_bytes() == (click / "shirt_mask.png").read_bytes()
            with Image.open(mask_path) as mask:  # a palette PNG: class indices shown in the class colours
                assert mask.size == (30, 40) and mask.mode == "P"
                assert tuple(mask.getpalette()[3:6]) == class_colour(1)
                labels = np.unique(np.asarray(mask))
            state = json.loads((segment_run / "checkpoints" / "best.json").read_text())
            assert set(labels.tolist()) <= set(range(state["model"]["kwargs"]["num_classes"]))

            page.close()  # the tab closes: its session's folder goes
            deadline = time.time() + 60
            while demo.workspace.current and time.time() < deadline:
                time.sleep(0.5)
            assert not demo.workspace.current and not click.exists()
        finally:
            browser.close()

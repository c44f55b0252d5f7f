"""report.html, `neuralsight report`, `neuralsight runs` and the demo on a toy task."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from engine_toy import cli_app
from helpers import png_nonblank
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    return cli_app()


@pytest.fixture(scope="module")
def toy_run(app, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", "toy", "--out", str(root), "--steps", "12", "--precision", "fp32",
                                 "--device", "cpu", "--set", "train.eval_every=4", "--set", "train.log_every=2"])
    assert result.exit_code == 0, result.output
    return next(root.glob("toy/*"))


def _embedded_pngs(html: str, tmp_path: Path) -> list[Path]:
    out = []
    for i, data in enumerate(re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)):
        p = tmp_path / f"img{i}.png"
        p.write_bytes(base64.b64decode(data))
        out.append(p)
    return out


def test_report_is_self_contained_with_figures_tables_curves_config_hardware(toy_run, tmp_path):
    html = (toy_run / "report.html").read_text()
    assert "<html" in html and "</html>" in html
    assert not re.search(r'(src|href)="(?!data:|#)[^"]+"', html), "the report must not reference other files"
    pngs = _embedded_pngs(html, tmp_path)
    assert len(pngs) >= 2 and all(png_nonblank(p) for p in pngs)  # the task's figure and the curves
    for anchor in ("overview", "toy", "curves", "evaluations", "config"):
        assert f'id="{anchor}"' in html, anchor
    summary = json.loads((toy_run / "summary.json").read_text())
    assert summary["hardware"]["cpu"] and "threads" in summary["hardware"]
    assert "hardware: device: cpu" in html and "training time" in html and "wall time" in html
    assert "Final metrics" in html and "val_loss" in html
    evals = re.search(r'id="evaluations".*?</table>', html, re.S).group(0)
    assert evals.count("<tr>") == 1 + 3  # header + evals at steps 4, 8, 12
    assert "[train]" in html and "batch_size = 32" in html  # the resolved config


def test_report_command_rerenders_and_survives_a_task_without_report_sections(app, toy_run, tmp_path):
    (toy_run / "report.html").unlink()
    result = runner.invoke(app, ["report", str(toy_run)])
    assert result.exit_code == 0, result.output
    assert (toy_run / "report.html").is_file()

    # A run of a task module without report_sections (toymissing has none) still renders.
    other = tmp_path / "toymissing" / "x"
    other.mkdir(parents=True)
    (other / "config.toml").write_text('task = "toymissing"\n\n[train]\nlr = 0.1\n')
    (other / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 1.0}\n'
                                         '{"kind": "eval", "step": 1, "val_loss": 0.5}\n')
    result = runner.invoke(app, ["report", str(other)])
    assert result.exit_code == 0, result.output
    html = (other / "report.html").read_text()
    assert 'id="curves"' in html and "lr = 0.1" in html
    # A run of a task this version does not have is refused with one line naming the task.
    (other / "config.toml").write_text('task = "vanished"\n')
    result = runner.invoke(app, ["report", str(other)])
    assert result.exit_code == 2 and "unknown task 'vanished'" in result.output


def test_runs_lists_runs_with_their_headline(app, toy_run, tmp_path):
    result = runner.invoke(app, ["runs", "--root", str(toy_run.parents[1])], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    value = json.loads((toy_run / "summary.json").read_text())["headline"]["value"]
    assert "val_loss" in result.stdout and f"{value:.4f}" in result.stdout and toy_run.name in result.stdout
    result = runner.invoke(app, ["runs", "--root", str(tmp_path / "empty")])
    assert result.exit_code == 0 and "no runs under" in result.stdout


def test_demo_runs_what_exists_and_lists_skipped_tasks(app, tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "strict"), "--task", "toymissing"])
    assert result.exit_code == 2, result.output  # a task skipped for missing data fails the demo ...
    assert "toymissing" in result.output and "skipped" in result.output and "--allow-missing" in result.output
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--task", "toy", "--task", "toymissing",
                                 "--allow-missing"])  # ... unless the user allows it
    assert result.exit_code == 0, result.output
    (demo_dir,) = tmp_path.glob("demo-*")
    html = (demo_dir / "report.html").read_text()
    assert '<a href="#toy">toy</a>' in html and '<h2 id="toy">' in html
    run_dir = next(demo_dir.glob("toy/*"))
    assert f'href="{run_dir.relative_to(demo_dir).as_posix()}/report.html"' in html
    assert (run_dir / "report.html").is_file()
    assert 'id="toy-overview"' in html and "data:image/png;base64," in html  # the toy run inline
    # The task with missing data is listed as skipped with the reason, nothing else.
    section = html.split('<h2 id="toymissing">')[1].split('<section id="extra-')[0]  # up to the lecture figures
    assert "skipped: dataset toy-data not found" in section and "data:image" not in section
    assert not (demo_dir / "toymissing").exists() or not any((demo_dir / "toymissing").iterdir())


def test_report_ok_sees_a_blank_or_broken_figure(tmp_path):
    import base64
    import io

    import numpy as np
    from helpers import report_ok
    from PIL import Image

    def png(arr) -> str:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    noise = (np.random.default_rng(0).random((20, 20)) * 255).astype(np.uint8)
    html = tmp_path / "report.html"
    html.write_text(f'<img src="data:image/png;base64,{png(noise)}">')
    assert report_ok(tmp_path)
    html.write_text(f'<img src="data:image/png;base64,{png(noise)}"><img src="data:image/png;base64,'
                    f'{png(np.full((20, 20), 255, np.uint8))}">')
    assert not report_ok(tmp_path)  # one blank figure
    html.write_text(f'<img src="data:image/png;base64,{png(noise)[:40]}">')
    with pytest.raises(Exception):  # noqa: B017 - a figure that does not decode
        report_ok(tmp_path)
    html.write_text("<p>no figures</p>")
    assert not report_ok(tmp_path)


# ---- training curves (issue 10 item 18) and units (item 9) ----------------------------------------------

TAB_BLUE, TAB_ORANGE = (31, 119, 180), (255, 127, 14)


def _pixels(path: Path, colour=None, tolerance: int = 40, half: str = "") -> int:
    """Pixels of ``colour`` (or, with None, strongly coloured pixels: not white, grey or black)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    if half:
        rgb = rgb[:, rgb.shape[1] // 2:] if half == "right" else rgb[:, :rgb.shape[1] // 2]
    if colour is None:
        return int(((rgb.max(-1) - rgb.min(-1)) > 80).sum())
    return int((np.abs(rgb - np.array(colour)).sum(-1) < tolerance).sum())


def test_a_reports_train_and_validation_loss_have_different_colours(toy_run):
    curves = toy_run / "figures" / "training_curves.png"
    assert _pixels(curves, TAB_BLUE) > 200 and _pixels(curves, TAB_ORANGE) > 200  # the train line, the val line


def test_a_single_evaluation_is_drawn_visibly(tmp_path):
    from neuralsight.viz.figures import training_curves

    records = [{"kind": "train", "step": 2, "loss": 1.0}, {"kind": "train", "step": 4, "loss": 0.8},
               {"kind": "eval", "step": 4, "val_loss": 0.9, "val_acc": 0.3}]
    path = training_curves(records, tmp_path / "curves.png")
    assert png_nonblank(path)
    assert _pixels(path, TAB_ORANGE, half="left") > 100       # the one validation loss: a large marker
    assert _pixels(path, half="right") > 200                  # the metrics panel: not an empty frame


def test_report_names_the_units_and_splits(app, tmp_path, monkeypatch):
    import toy_task

    monkeypatch.setattr(toy_task.ToyTask, "item_unit", "samples", raising=False)
    monkeypatch.setattr(toy_task.ToyTask, "metric_units", {"val_loss": "squared error"}, raising=False)
    result = runner.invoke(app, ["train", "toy", "--out", str(tmp_path), "--steps", "8", "--precision", "fp32",
                                 "--device", "cpu", "--set", "train.eval_every=4"])
    assert result.exit_code == 0, result.output
    run_dir = next(tmp_path.glob("toy/*"))
    fit = json.loads((run_dir / "summary.json").read_text())["fit"]
    assert fit["item_unit"] == "samples" and fit["metric_units"] == {"val_loss": "squared error"}
    html = (run_dir / "report.html").read_text()
    assert re.search(r"throughput<b>[\d,]+ samples/s</b>", html)
    assert "val_loss (squared error), validation split" in html                 # the headline
    assert "<td>val_loss (squared error)</td>" in html                          # the final metrics
    assert "<th>val_loss (squared error)</th>" in html                          # the evaluations table
    assert "val_loss in squared error" in html                                  # the curves' caption

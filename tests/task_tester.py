"""One tester for every registered task (issue 12 item 6), in the spirit of smp's BaseModelTester.

For each task: train a few steps on its real data (``CASES`` holds the tiny overrides and how to make inputs),
then evaluate each split it has, predict on sample inputs (one of them broken, which must come back as an error
row while the others succeed), re-render the report and check every figure in it decodes and is not blank, and
explain (through ``neuralsight explain``, whose figures the re-rendered report must then show) when the task can. A task that is registered without a case here fails ``test_every_task_has_a_case``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from helpers import png_nonblank, report_figures, report_ok


@dataclasses.dataclass
class Case:
    overrides: list[str]                         # --set items that make training take seconds
    inputs: Callable[[Path], list[Path]] | None  # sample inputs for predict (None: predict takes none)
    splits: tuple[str, ...] = ("val", "test")    # the splits `eval` accepts
    data: str | None = None                      # the catalog dataset the task needs (the case skips without it)
    predict_options: dict = dataclasses.field(default_factory=dict)
    explain_options: dict = dataclasses.field(default_factory=dict)
    quick: bool = True


def broken_file(folder: Path, name: str) -> Path:
    """A file no task can read: not an image, a volume, a CSV or UTF-8 text."""
    path = folder / name
    path.write_bytes(b"\xff\xfe\x00\x01 this is not what its name says \x00\xc3")
    return path


def check_app_predict(run: Path, inputs: list[Path], rows: list[dict], options: dict) -> None:
    """The app shows what `predict` computes for the first good input: the rows as a table, every image output,
    the first CSV output as a table, and every output (and the table, as results.csv) for download."""
    from neuralsight import app as ui

    good = [p for p in inputs if not p.name.startswith("broken")][:1]
    work = ui.Workspace()
    try:
        shown = ui.run_predict(str(run), str(good[0]) if good else None, work, **options)
        assert shown.headers and shown.rows and not shown.message.startswith("error"), shown.message
        where = str(good[0]) if good else ""
        expected = [Path(v).suffixes for r in rows if "error" not in r and (not where or r["input"].startswith(where))
                    for v in (r.get("outputs") or {}).values()]  # names may follow the number of inputs
        files = {Path(f).name for f in shown.files}
        assert "results.csv" in files and len(files) == len(shown.files) == len(expected) + 1, (files, expected)
        assert sorted(Path(f).suffixes for f in files - {"results.csv"}) == sorted(expected), (files, expected)
        assert all(Path(f).is_file() for f in shown.files)
        assert {Path(p).name for p, _ in shown.images} == {n for n in files if n.endswith(".png")}
        if any(n.endswith(".csv") and n != "results.csv" for n in files):
            assert shown.table_name and shown.table_headers and shown.table_rows, shown
    finally:
        work.close()
    assert not work.root.exists()


def run_case(name: str, case: Case, tmp_path: Path) -> dict:
    """Train, evaluate, predict, report and explain one task; returns what each step gave (for extra checks)."""
    from typer.testing import CliRunner

    from neuralsight.cli import app
    from neuralsight.tasks.base import SavedRun, get_task

    runner = CliRunner()
    root = tmp_path / "runs"
    args = ["train", name, "--out", str(root), "--no-progress", *[x for o in case.overrides for x in ("--set", o)]]
    res = runner.invoke(app, [*args, "--quick"] if case.quick else args)
    assert res.exit_code == 0, res.output
    (run,) = (root / name).iterdir()
    assert f"run: {run}" in res.stdout and "report: " in res.stdout  # the CLI names the run at the end
    summary = json.loads((run / "summary.json").read_text())
    head = summary["headline"]
    assert head["name"] and isinstance(head["value"], float) and head["split"] in ("val", "test")
    assert set(summary["metrics"]) == {"val", "test"} and summary["metrics"][head["split"]]
    assert summary["fit"]["stopped_by"] in ("steps", "epochs", "budget", "early_stop")
    unit = summary["fit"]["item_unit"]
    assert unit and unit != "items", "the task's TrainTask must say what an item is (item_unit)"
    out = {"run": run, "summary": summary, "eval": {}}

    for split in case.splits:
        res = runner.invoke(app, ["eval", str(run), "--split", split, "--json"])
        assert res.exit_code == 0, res.output
        metrics = json.loads(res.stdout)
        assert metrics["split"] == split and len(metrics) > 1
        out["eval"][split] = metrics
    for split in {"val", "test"} - set(case.splits):
        res = runner.invoke(app, ["eval", str(run), "--split", split])
        assert res.exit_code == 2 and "split" in res.output, res.output  # it refuses, never ignores

    task = get_task(name)
    saved = SavedRun.open(run)
    inputs = case.inputs(tmp_path) if case.inputs else []
    from neuralsight.tasks.base import parse_options

    options = parse_options(task.PredictOptions, case.predict_options, "predict", name)
    rows = task.predict(saved, inputs, tmp_path / "pred", options)
    assert rows, "predict returned nothing"
    bad = [r for r in rows if "error" in r]
    good = [r for r in rows if "error" not in r]
    assert good, rows
    for r in good:
        for path in (r.get("outputs") or {}).values():
            assert Path(path).is_file(), path
    if case.inputs:
        broken = [p for p in inputs if p.name.startswith("broken")]
        assert len(bad) == len(broken) and all(str(b) in r["error"] for b, r in zip(broken, bad, strict=True))
    out["predict"] = rows
    check_app_predict(run, inputs, rows, case.predict_options)

    (run / "report.html").unlink()
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert report_ok(run)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert f"{unit}/s" in html  # the throughput says what it counts
    for name, metric_unit in summary["fit"]["metric_units"].items():
        assert f"{name} ({metric_unit})" in html, (name, metric_unit)

    if hasattr(task, "explain"):  # through the CLI, into RUN/explain, which the re-rendered report then shows
        sets = [x for k, v in case.explain_options.items() for x in ("--set", f"{k}={v}")]
        res = runner.invoke(app, ["explain", str(run), *sets])
        assert res.exit_code == 0, res.output
        paths = [Path(line) for line in res.stdout.splitlines() if line.endswith((".png", ".html"))]
        assert paths and all(p.is_file() and p.parent == run / "explain" for p in paths), res.stdout
        assert all(png_nonblank(p) for p in paths if p.suffix == ".png")
        res = runner.invoke(app, ["report", str(run)])
        assert res.exit_code == 0 and report_ok(run), res.output
        html = (run / "report.html").read_text(encoding="utf-8")
        assert 'id="explain"' in html and len(report_figures(html)) >= len(paths), "explain figures not in the report"
        out["explain"] = paths
    shutil.rmtree(tmp_path / "pred", ignore_errors=True)
    return out

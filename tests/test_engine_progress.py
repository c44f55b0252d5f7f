"""Progress reports: a line per evaluation on a pipe, a live bar on a terminal, units, status and track."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from engine_toy import Config
from toy_task import ToyTask

from neuralsight.engine import progress, runs, trainer


@pytest.fixture(autouse=True)
def _restore_mode():
    yield
    progress.set_mode("auto")


class Terminal(io.StringIO):
    def isatty(self):
        return True


class UnitTask(ToyTask):
    """The toy task declaring its units, with a second metric."""

    item_unit = "points"
    metric_units = {"val_loss": "nats/char"}

    def evaluate(self, model):
        out = super().evaluate(model)
        return {**out, "val_rmse": out["val_loss"] ** 0.5}


def _fit(tmp_path, task_cls=UnitTask, **train):
    cfg = Config()
    train = {"precision": "fp32", "deterministic": True, "device": "cpu", "progress": True, **train}
    cfg.train = dataclasses.replace(cfg.train, **train)
    env = trainer.setup(cfg.train)
    task = task_cls(cfg, env.device)
    run = runs.create("toy", "p", root=tmp_path, stamp="s")
    return trainer.fit(task, env, cfg.train, run, {}), run


def test_plain_stream_gets_one_line_per_evaluation_with_units(tmp_path):
    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    result, run = _fit(tmp_path, steps=30, eval_every=10, log_every=5)
    lines = out.getvalue().splitlines()
    evals = [r for r in runs.read_metrics(run.path) if r["kind"] == "eval"]
    assert len(lines) == len(evals) == 3
    pattern = (r"step (\d+)/30  epoch (\d+)  loss \d+\.\d{4}  val_loss (\d+\.\d{4}) nats/char( \(best\))?  "
               r"val_rmse \d+\.\d{4}  \d+\.\d s  [\d,.]+ points/s")
    for text, record in zip(lines, evals):
        match = re.fullmatch(pattern, text)
        assert match, text
        assert int(match[1]) == record["step"] and int(match[2]) == record["epoch"]
        assert float(match[3]) == pytest.approx(record["val_loss"], abs=1e-4)
    assert "(best)" in lines[0]  # the first evaluation is always the best so far
    assert result.item_unit == "points" and result.metric_units == {"val_loss": "nats/char"}


def test_plain_lines_show_the_budget_and_skip_what_is_not_known_yet(tmp_path):
    class AtStart(UnitTask):
        evaluate_at_start = True

    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    _fit(tmp_path, AtStart, epochs=0, steps=0, max_time=0.6, eval_every=0)
    first, last = out.getvalue().splitlines()[0], out.getvalue().splitlines()[-1]
    assert first.startswith("step 0  epoch 0  val_loss ") and " loss " not in first and "/s" not in first
    assert re.search(r"  \d+\.\d/0\.6 s  [\d,.]+ points/s$", last), last


def test_progress_false_and_mode_off_are_silent(tmp_path, capsys):
    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    _fit(tmp_path, steps=10, eval_every=5, progress=False)
    progress.set_mode("off")
    _fit(tmp_path / "b", steps=10, eval_every=5)
    assert out.getvalue() == "" and capsys.readouterr() == ("", "")


def test_terminal_gets_the_live_bar_with_units(tmp_path):
    term = Terminal()
    progress.set_mode("auto", stream=term)
    assert progress.mode() == "rich"
    _fit(tmp_path, steps=20, eval_every=10, log_every=5)
    text = term.getvalue()
    assert "\x1b[" in text and "train" in text  # a redrawn rich display, not lines
    assert "points/s" in text and "nats/char" in text
    assert not re.search(r"^step \d", text, re.M)


def test_auto_mode_follows_the_stream_term_and_rank(monkeypatch):
    progress.set_mode("auto", stream=io.StringIO())
    assert progress.mode() == "plain"  # a pipe, a file, CI
    progress.set_mode("auto", stream=Terminal())
    assert progress.mode() == "rich"
    monkeypatch.setenv("TERM", "dumb")
    assert progress.mode() == "plain"
    monkeypatch.delenv("TERM")
    monkeypatch.setenv("RANK", "1")
    assert progress.mode() == "off"  # only rank 0 speaks
    monkeypatch.setenv("RANK", "0")
    progress.set_mode("plain", stream=Terminal())
    assert progress.mode() == "plain"  # forced, whatever the stream
    with pytest.raises(ValueError, match="not one of auto, rich, plain, off"):
        progress.set_mode("fancy")


def test_auto_mode_reads_stderr_by_default(capsys):
    progress.set_mode("auto")
    assert progress.mode() == "plain"  # pytest's captured stderr is no terminal
    with progress.status("loading"):
        pass
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("loading ...\nloading: done in ")


def test_status_lines_on_success_and_failure(monkeypatch):
    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    clock = iter([10.0, 13.25, 20.0, 20.5])
    monkeypatch.setattr(progress, "_now", lambda: next(clock))
    with progress.status("final evaluation"):
        pass
    with pytest.raises(RuntimeError), progress.status("report"):
        raise RuntimeError("boom")
    assert out.getvalue().splitlines() == ["final evaluation ...", "final evaluation: done in 3.2 s",
                                           "report ...", "report: failed after 0.5 s"]


def test_status_on_a_terminal_spins_then_says_done():
    term = Terminal()
    progress.set_mode("rich", stream=term)
    with progress.status("tiling"):
        pass
    assert "tiling: done in" in term.getvalue()


def test_track_on_a_pipe_prints_at_most_one_line_per_interval_and_the_last(monkeypatch):
    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    now = [0.0]
    monkeypatch.setattr(progress, "_now", lambda: now[0])

    def items():
        for i in range(9):
            now[0] += 3.0  # each item takes 3 s
            yield i

    assert list(progress.track(items(), "predict", total=9, unit="images")) == list(range(9))
    assert out.getvalue().splitlines() == [
        "predict: 4/9 images  44%  12.0 s  0.333 images/s",
        "predict: 8/9 images  89%  24.0 s  0.333 images/s",
        "predict: 9/9 images  done in 27.0 s  0.333 images/s",
    ]


def test_track_reports_where_a_loop_was_left(monkeypatch):
    out = io.StringIO()
    progress.set_mode("plain", stream=out)
    for i in progress.track(range(100), "scan", unit="slices"):
        if i == 4:
            break
    assert re.fullmatch(r"scan: 4/100 slices  stopped after \d+\.\d s  .* slices/s\n", out.getvalue())


def test_track_and_status_inside_the_live_training_bar(tmp_path):
    """Rich draws one live display at a time: nested reports print above the bar instead of failing."""
    term = Terminal()
    progress.set_mode("rich", stream=term)
    calls = []

    def on_evaluate(model, step, metrics):
        with progress.status(f"samples at {step}"):
            calls.extend(progress.track(range(3), "sampling", unit="lines"))

    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, precision="fp32", device="cpu", progress=True, steps=10, eval_every=5)
    env = trainer.setup(cfg.train)
    run = runs.create("toy", "n", root=tmp_path, stamp="s")
    trainer.fit(ToyTask(cfg, env.device), env, cfg.train, run, {}, on_evaluate=on_evaluate)
    assert calls == [0, 1, 2, 0, 1, 2]
    assert "samples at 5: done in" in term.getvalue() and "sampling: 3/3 lines" in term.getvalue()


def test_numbers_and_rates_read_well():
    assert progress.number(0.34123) == "0.3412"
    assert progress.number(12345.678) == "12,345.7"
    assert progress.number(2.5e-5) == "2.500e-05"
    assert progress.rate(3950, 1.0, "images") == "3,950 images/s"
    assert progress.rate(5, 2.0, "volumes") == "2.5 volumes/s"


def test_training_inside_a_status_prints_lines_above_the_spinner(tmp_path):
    term = Terminal()
    progress.set_mode("rich", stream=term)
    with progress.status("training 2 models"):
        _fit(tmp_path, steps=10, eval_every=5)
    text = term.getvalue()
    assert re.search(r"step 5/10  epoch 0  loss \S+  val_loss \S+ nats/char \(best\)", text)
    assert "training 2 models: done in" in text

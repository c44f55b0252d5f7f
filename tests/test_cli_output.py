"""What the CLI prints (issue 10 items 6-10): data is never markup, tables never cut, `latest` for every
command that takes a run, piped training logs a line per evaluation, the time budget holds end to end."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from engine_toy import cli_app
from typer.testing import CliRunner

runner = CliRunner()
TOY = Path(__file__).resolve().parent / "engine_toy.py"
FAST = ["--precision", "fp32", "--device", "cpu"]
MARKUP = re.compile(r"\[/?(bold|yellow|red|green|dim|italic)[^\]]*\]|\[/\]")


@pytest.fixture(scope="module")
def app():
    return cli_app()


@pytest.fixture(scope="module")
def toy_runs(app, tmp_path_factory) -> Path:
    """Two toy runs under a folder whose name rich would read as markup."""
    root = tmp_path_factory.mktemp("out") / "runs [old]"
    for name in ("first", "second"):
        res = runner.invoke(app, ["train", "toy", "--out", str(root), "--name", name, "--steps", "8",
                                  "--set", "train.eval_every=4", *FAST])
        assert res.exit_code == 0, res.output
    return root


def _commands(app) -> dict:
    """Every command by its full name (``data fetch``, ``train toy``)."""
    out = {}

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(cmd, "resolve_command"):  # a group (train, data)
                walk(cmd, full)
            else:
                out[full] = cmd

    walk(typer.main.get_command(app), "")
    return out


# ---- item 8: `latest` everywhere a run is taken ---------------------------------------------------------

def test_every_command_that_takes_a_run_resolves_latest(app, tmp_path, monkeypatch):
    """Any command with a RUN argument (today eval, predict, generate, explain, report; a future export too)
    reads `latest` and `latest:TASK` as the newest run, never as a folder called "latest"."""
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(tmp_path / "empty"))
    taking = [name for name, cmd in _commands(app).items()
              if any(p.name == "run" and p.param_type_name == "argument" for p in cmd.params)]
    assert {"eval", "predict", "generate", "explain", "report", "export"} <= set(taking), taking
    required = {"export": ["--format", "torchscript"]}  # a command's required options besides RUN
    for name in taking:
        for spec, words in (("latest", "no runs under"), ("latest:segment", "no 'segment' runs under")):
            res = runner.invoke(app, [*name.split(), spec, *required.get(name, [])])
            assert res.exit_code == 2, (name, res.output)
            assert words in res.stderr and "does not exist" not in res.stderr, (name, res.stderr)


def test_latest_opens_the_newest_run_in_each_command(app, toy_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(toy_runs))
    newest = max((toy_runs / "toy").iterdir(), key=lambda p: p.name)
    assert newest.name.endswith("-second")
    for spec in ("latest", "latest:toy"):
        res = runner.invoke(app, ["eval", spec, "--json"])
        assert res.exit_code == 0, res.output
        summary = json.loads((newest / "summary.json").read_text())
        assert json.loads(res.stdout)["val_loss"] == pytest.approx(summary["metrics"]["val"]["val_loss"])
    sample = tmp_path / "sample.bin"
    sample.write_bytes(b"12345")
    res = runner.invoke(app, ["predict", "latest", str(sample), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == [{"input": str(sample), "size": 5}], res.output
    res = runner.invoke(app, ["report", "latest"])
    assert res.exit_code == 0 and res.stdout.strip() == str(newest / "report.html"), res.output
    for command in ("generate", "explain"):  # resolved to the toy run, which has no such method
        res = runner.invoke(app, [command, "latest:toy"])
        assert res.exit_code == 2 and "does not apply to a 'toy' run" in res.stderr, res.output


# ---- items 6 and 8: plain tables, data never read as markup -----------------------------------------------

def test_runs_has_a_date_column_and_whole_paths_at_80_columns(app, toy_runs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, ["runs", "--root", str(toy_runs)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0])[0] == "date"
    for run in (toy_runs / "toy").iterdir():
        (line,) = [x for x in lines if x.endswith(str(run))]  # the whole path on one line, "[old]" kept
        started = json.loads((run / "summary.json").read_text())["started"]
        assert line.startswith(started), line
    assert not MARKUP.search(res.output)
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(toy_runs))  # where `latest` looks, `runs` lists
    assert runner.invoke(app, ["runs"]).stdout == res.stdout


def test_data_list_prints_folder_names_with_brackets_as_they_are(tmp_path, monkeypatch):
    from conftest import shared_data

    folder = tmp_path / "x [old]"
    folder.mkdir()
    (folder / "covid-hu").symlink_to(shared_data("covid-hu"), target_is_directory=True)
    monkeypatch.setenv("NEURALSIGHT_DATA", str(folder))
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(cli_app(), ["data", "list"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.stdout.splitlines() if line.startswith("covid-hu "))
    assert f"{folder}/covid-hu" in row and "yes" in row
    assert not MARKUP.search(res.output)


def test_errors_and_notes_print_brackets_from_data_as_they_are(app, toy_runs, tmp_path):
    run = next((toy_runs / "toy").iterdir())
    missing = tmp_path / "[bold]shirt[/bold].png"
    res = runner.invoke(app, ["predict", str(run), str(missing)])
    assert res.exit_code == 2
    assert f"{missing}: no such file" in res.stderr
    res = runner.invoke(app, ["eval", str(tmp_path / "[red]gone")])
    assert res.exit_code == 2 and f"run directory {tmp_path / '[red]gone'} does not exist" in res.stderr


def test_demo_table_and_notes_are_plain(app, tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo [x]"), "--task", "toymissing"])
    assert res.exit_code == 2, res.output  # skipped for missing data: exit 2, after the table
    lines = res.stdout.splitlines()
    assert lines[0] == "demo: toymissing"  # piped: the demo's progress is on stdout too
    head = next(i for i, line in enumerate(lines) if line.startswith("run "))
    assert all(line.startswith("drawing the lecture figures") for line in lines[1:head])  # status lines only
    assert re.split(r"\s{2,}", lines[head]) == ["run", "status", "headline / reason", "time (s)"]
    row = lines[head + 1]
    assert row.startswith("toymissing") and "skipped" in row and "/nonexistent/toy" in row
    assert f"demo report: {tmp_path / 'demo [x]'}" in res.stdout
    assert "neuralsight data fetch --demo" in res.stderr and "--allow-missing" in res.stderr
    assert not MARKUP.search(res.output), res.output


@pytest.mark.parametrize("args, first", [(["models"], "model"), (["params"], "layer")])
def test_listing_commands_print_whole_cells_at_80_columns(app, monkeypatch, args, first):
    from neuralsight.models import list_models

    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    header = next(line for line in res.stdout.splitlines() if line.startswith(first))
    assert "…" not in res.stdout and not MARKUP.search(res.output)
    if args == ["models"]:
        for name, description in list_models().items():
            assert any(line.startswith(name) and line.endswith(description) for line in res.stdout.splitlines())
    else:
        assert "1,638,400" in res.stdout  # the lecture's 128x128 input to 100 neurons, whole
    assert header


# ---- item 7: piped training logs one line per evaluation -------------------------------------------------

def _train_toy(tmp_path, extra=(), stderr=subprocess.PIPE, env=None):
    args = [sys.executable, str(TOY), "train", "toy", "--out", str(tmp_path), "--steps", "12",
            "--set", "train.eval_every=4", "--set", "train.log_every=2", *FAST, *extra]
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300,
                          env={**os.environ, "TERM": "xterm-256color", **(env or {})})


def _evaluation_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("step ")]


@pytest.mark.slow
def test_piped_train_prints_a_plain_line_per_evaluation_then_headline_and_run(tmp_path):
    done = _train_toy(tmp_path, ["--progress"])
    assert done.returncode == 0, done.stderr
    lines = _evaluation_lines(done.stdout)
    assert [line.split()[1] for line in lines] == ["4/12", "8/12", "12/12"], done.stdout
    for line in lines:  # step, train loss, the monitored metric, elapsed
        assert re.search(r"loss \d+\.\d{4}", line) and re.search(r"val_loss \d+\.\d{4}", line), line
        assert re.search(r"\d+\.\d s", line), line
    assert "\x1b[" not in done.stdout  # no terminal codes in a log
    run = next((tmp_path / "toy").iterdir())
    head, run_line = done.stdout.splitlines()[-3:-1]
    assert re.fullmatch(r"val_loss \d+\.\d{4} \(val split\)", head) and run_line == f"run: {run}"
    assert "final evaluation with the best checkpoint: done in" in done.stdout  # the long steps say so


@pytest.mark.slow
def test_train_under_tee_with_stderr_on_a_terminal_logs_the_lines_on_stdout(tmp_path):
    """`neuralsight train ... | tee log` from a terminal: stderr is the terminal, the log holds stdout."""
    leader, follower = pty.openpty()
    try:
        done = _train_toy(tmp_path, ["--progress"], stderr=follower)
    finally:
        os.close(follower)
    os.close(leader)
    assert done.returncode == 0
    assert len(_evaluation_lines(done.stdout)) == 3, done.stdout


@pytest.mark.slow
def test_no_progress_is_silent_and_json_output_stays_json(tmp_path):
    done = _train_toy(tmp_path, ["--no-progress"])
    assert done.returncode == 0, done.stderr
    assert not _evaluation_lines(done.stdout) and "final evaluation" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-2].startswith("run: ")
    run = next((tmp_path / "toy").iterdir())
    shown = subprocess.run([sys.executable, str(TOY), "eval", str(run), "--json"], capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["split"] == "test"      # progress never mixed into data
    assert "evaluating" in shown.stderr                      # the status line went to stderr


def test_in_process_train_follows_the_flag(app, tmp_path):
    """CliRunner's stdout is not a terminal: --progress gives the evaluation lines there, the toy's
    `train.progress = false` preset none."""
    res = runner.invoke(app, ["train", "toy", "--out", str(tmp_path), "--steps", "8", "--set", "train.eval_every=4",
                              "--progress", *FAST])
    assert res.exit_code == 0, res.output
    assert len(_evaluation_lines(res.stdout)) == 2
    res = runner.invoke(app, ["train", "toy", "--out", str(tmp_path), "--steps", "8", *FAST])
    assert res.exit_code == 0 and not _evaluation_lines(res.stdout), res.output
    from neuralsight.engine import progress

    assert progress.mode() != "off"  # the command restored the default for whatever runs next


# ---- item 10: the time budget, end to end ------------------------------------------------------------------

def test_max_time_help_states_the_rule(app):
    res = runner.invoke(app, ["train", "toy", "--help"], env={"COLUMNS": "400"})
    text = " ".join(res.output.split())
    assert "within 2 %" in text and "final test evaluation" in text and "validation evaluations" in text


@pytest.mark.slow
def test_max_time_stops_the_loop_within_two_percent(app, tmp_path):
    budget = 3.0
    res = runner.invoke(app, ["train", "toy", "--out", str(tmp_path), "--max-time", str(budget),
                              "--set", "train.log_every=20", "--set", "train.eval_every=100000", *FAST])
    assert res.exit_code == 0, res.output
    fit = json.loads((next((tmp_path / "toy").iterdir()) / "summary.json").read_text())["fit"]
    assert fit["stopped_by"] == "budget"
    assert 0.5 * budget < fit["wall_seconds"] <= 1.02 * budget, fit

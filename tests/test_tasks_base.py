"""The task protocol in tasks/base.py: registry, typed options, saved runs, the run alias, input expansion."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from engine_toy import cli_app
from typer.testing import CliRunner

from neuralsight.config import bounded, choice
from neuralsight.errors import CheckpointError, ConfigError, UserError
from neuralsight.tasks import base


def test_every_shipped_task_is_registered_with_its_protocol():
    shipped = {"classify", "textgen", "segment", "segment3d", "forecast"}
    names = set(base.list_tasks())
    assert shipped & names == {n for n in shipped if n in names}  # (tasks still being ported may be absent)
    for name in names:
        task = base.get_task(name)
        for attr in ("help", "preset", "Config", "PredictOptions", "ExplainOptions", "build", "finish", "evaluate",
                     "predict", "report"):
            assert hasattr(task, attr), (name, attr)
        assert dataclasses.is_dataclass(task.Config) and dataclasses.is_dataclass(task.PredictOptions)


def test_register_task_refuses_a_class_without_the_protocol():
    with pytest.raises(TypeError, match="needs a class attribute 'preset'"):
        @base.register_task
        class NoPreset:
            name, help, Config = "nopreset", "", object


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UserError, match="unknown task 'nope'.*classify"):
        base.get_task("nope")


@dataclasses.dataclass
class Opts:
    tile: int | None = None
    overlap: float = bounded(0.5, min=0.0, max=0.95)
    mode: str = choice("auto", ("auto", "yes"))


def test_parse_options_types_and_refuses_foreign_keys():
    assert base.parse_options(Opts, {"tile": 64, "mode": "yes"}, "predict", "segment") == Opts(64, 0.5, "yes")
    with pytest.raises(ConfigError, match="'top_k' does not apply to a segment run.*tile, overlap, mode"):
        base.parse_options(Opts, {"top_k": 3}, "predict", "segment")
    with pytest.raises(ConfigError, match="overlap"):
        base.parse_options(Opts, {"overlap": 2.0}, "predict", "segment")
    with pytest.raises(ConfigError, match="mode"):
        base.parse_options(Opts, {"mode": "maybe"}, "predict", "segment")


def test_expand_inputs_lists_folders_and_keeps_missing_paths(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.png"):
        (tmp_path / "d" / name).write_bytes(b"x")
    got = base.expand_inputs([tmp_path / "d", tmp_path / "gone.png"], (".png", ".jpg"))
    assert [p.relative_to(tmp_path).as_posix() for p in got] == ["d/a.JPG", "d/b.png", "d/sub/c.png", "gone.png"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    res = CliRunner().invoke(cli_app(), ["train", "toy", "--out", str(root), "--steps", "10", "--precision", "fp32",
                                         "--device", "cpu"])
    assert res.exit_code == 0, res.output
    (run,) = (root / "toy").iterdir()
    return run


def test_train_writes_summary_with_splits_apart_and_prints_the_headline(toy_run):
    summary = json.loads((toy_run / "summary.json").read_text())
    assert summary["headline"]["name"] == "val_loss" and summary["headline"]["split"] == "val"
    assert set(summary["metrics"]) == {"val", "test"} and "val_loss" in summary["metrics"]["val"]
    assert summary["fit"]["stopped_by"] == "steps" and summary["fit"]["step"] == 10


def test_saved_run_falls_back_from_best_to_last_and_says_when_neither(toy_run, tmp_path):
    run = tmp_path / "toy" / toy_run.name
    shutil.copytree(toy_run, run)
    saved = base.SavedRun.open(run)
    assert saved.tag() == "best" and saved.task.name == "toy" and saved.device.type in ("cpu", "cuda", "mps")
    for f in (run / "checkpoints").glob("best.*"):
        f.unlink()
    assert saved.tag() == "last" and saved.state()["step"] == 10
    for f in (run / "checkpoints").glob("last.*"):
        f.unlink()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        saved.tag()


def test_latest_alias_picks_the_newest_run_of_a_task(toy_run, tmp_path, monkeypatch):
    root = toy_run.parents[1]
    assert base.SavedRun.open("latest", root=root).path == toy_run
    assert base.SavedRun.open("latest:toy", root=root).path == toy_run
    with pytest.raises(UserError, match="no 'segment' runs under"):
        base.SavedRun.open("latest:segment", root=root)
    monkeypatch.setenv("NEURALSIGHT_RUNS", str(root))
    res = CliRunner().invoke(cli_app(), ["eval", "latest:toy", "--json"])
    assert res.exit_code == 0, res.output
    assert "val_loss" in json.loads(res.stdout)


def test_saved_run_refuses_a_config_this_version_cannot_read(toy_run, tmp_path):
    run = tmp_path / "toy" / "r"
    shutil.copytree(toy_run, run)
    (run / "config.toml").write_text('task = "toy"\n[train]\nno_such_key = 1\n')
    with pytest.raises(CheckpointError, match="does not fit this version of the toy task"):
        base.SavedRun.open(run)


def test_predict_prints_every_task_the_same_way_and_exits_2_on_a_failed_input(toy_run, tmp_path):
    good = tmp_path / "a.bin"
    good.write_bytes(b"12345")
    res = CliRunner().invoke(cli_app(), ["predict", str(toy_run), str(good), str(tmp_path / "missing.bin")])
    assert res.exit_code == 2
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["input", "size"] and lines[1].split() == [str(good), "5"]
    assert f"error: {tmp_path / 'missing.bin'}: no such file" in res.output
    res = CliRunner().invoke(cli_app(), ["predict", str(toy_run), str(good), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == [{"input": str(good), "size": 5}]


def test_table_output_never_cuts_a_path(tmp_path, capsys):
    from neuralsight.cli.core import print_table

    long = "/" + "/".join(["a-very-long-folder-name"] * 8) + "/file.png"
    print_table(["input", "value"], [[long, 0.123456], ["x", None]])
    out = capsys.readouterr().out.splitlines()
    assert long in out[1] and out[1].endswith("0.1235") and out[2].split() == ["x", "-"]
    assert Path(long).name in out[1]


def test_rich_markup_in_data_is_printed_as_is(tmp_path, capsys):
    from neuralsight.cli.core import err

    err("folder x [old] and [red]not red[/red]")
    assert "x [old] and [red]not red[/red]" in capsys.readouterr().err

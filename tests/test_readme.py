"""The README's commands exist: every `neuralsight ...` line in its code blocks parses (the command, its
options and their values' types; for `train`, the preset and every --set key and value make a valid config),
every `make ...` target is in the Makefile, every script it runs is in the checkout, and every
`from neuralsight... import name` of its Python blocks imports."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
import typer

from neuralsight.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# README lines that are wrong today, each with why; the lead fixes the README text and deletes the entry
# (the test fails for an entry that has started to pass, so none outlives its fix).
KNOWN_STALE: dict[str, str] = {}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def logical_lines(body: str) -> list[str]:
    """Shell lines: backslash continuations joined, a quote left open continues on the next line."""
    out, pending = [], ""
    for raw in body.splitlines():
        pending = f"{pending}\n{raw}" if pending else raw
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote
            continue
        out.append(pending.strip())
        pending = ""
    return [line for line in out if line]


def shell_commands() -> list[list[str]]:
    commands = []
    for lang, body in code_blocks(README.read_text(encoding="utf-8")):
        if lang in ("bash", "sh", "shell", ""):
            commands += [shlex.split(line, comments=True) for line in logical_lines(body)]
    return [c for c in commands if c]


def python_imports() -> list[str]:
    lines = []
    for lang, body in code_blocks(README.read_text(encoding="utf-8")):
        if lang == "python":
            lines += [line.strip() for line in body.splitlines() if re.match(r"\s*(from|import) neuralsight", line)]
    return lines


def neuralsight_args(words: list[str]) -> list[str] | None:
    """The arguments after `neuralsight` (also `-m neuralsight`, as torchrun and python take it)."""
    if words[0] == "neuralsight" or words[0].endswith("/neuralsight"):
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "neuralsight":
            return words[i + 2:]
    return None


def parse_cli(args: list[str]) -> tuple[list[str], dict]:
    """Parse ``args`` the way ``neuralsight`` would, without running anything (raises typer's usage errors);
    returns the command's path (``["train", "classify"]``) and its parsed parameters."""
    from neuralsight.cli import app

    command, path = typer.main.get_command(app), []
    ctx = command.make_context("neuralsight", list(args))
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    while hasattr(command, "resolve_command"):  # a group: find the subcommand, parse its part
        if not rest:
            raise AssertionError("a command group needs a command")
        name, command, rest = command.resolve_command(ctx, rest)
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    assert not rest, f"unexpected arguments {rest}"
    return path, ctx.params


def check_train_config(task: str, params: dict) -> None:
    """A `train TASK` line's preset, --set keys and values and shortcut flags make a valid config."""
    from neuralsight.cli.train import shortcut_overrides
    from neuralsight.tasks.base import get_task, resolve_config

    shortcuts = ("epochs", "steps", "max_time", "batch_size", "lr", "device", "precision", "compile", "seed",
                 "deterministic", "progress", "dataset", "data")
    overrides = list(params["set_"]) + shortcut_overrides(**{k: params[k] for k in shortcuts})
    resolve_config(get_task(task), preset=params["preset"], config_file=params["config"], overrides=overrides,
                   quick=params["quick"])


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def check(words: list[str]) -> None:
    args = neuralsight_args(words)
    if args is not None:
        path, params = parse_cli(args)
        if path[0] == "train":
            check_train_config(path[1], params)
    elif words[0] == "make":
        missing = set(words[1:]) - make_targets()
        assert not missing, f"no such make target: {missing}"
    elif words[0] in ("python", "python3") and words[1].endswith(".py"):
        assert (ROOT / words[1]).is_file(), f"no script {words[1]}"


def test_readme_has_commands_to_check():
    commands = shell_commands()
    assert sum(neuralsight_args(c) is not None for c in commands) >= 30
    assert ["make", "demo"] in commands and ["make", "test"] in commands


def _failures() -> dict[str, str]:
    failures = {}
    for words in shell_commands():
        try:
            check(words)
        except (typer.TyperException, AssertionError, UserError) as e:
            failures[shlex.join(words)] = e.format_message() if hasattr(e, "format_message") else str(e)
    for line in python_imports():
        m = re.match(r"from ([\w.]+) import ([\w, ]+)", line) or re.match(r"import ([\w.]+)()", line)
        try:
            module = importlib.import_module(m.group(1))
            for name in filter(None, (n.strip() for n in m.group(2).split(","))):
                if not hasattr(module, name):
                    raise ImportError(f"{m.group(1)} has no {name}")
        except ImportError as e:
            failures[line] = str(e)
    return failures


def test_every_readme_command_parses():
    failures = _failures()
    new = {k: v for k, v in failures.items() if k not in KNOWN_STALE}
    assert not new, "README lines that do not work:\n" + "\n".join(f"  {k}\n    -> {v}" for k, v in new.items())
    fixed = [k for k in KNOWN_STALE if k not in failures]
    assert not fixed, f"these README lines work now; delete them from KNOWN_STALE: {fixed}"


@pytest.mark.parametrize("words, ok", [
    (["neuralsight", "train", "classify", "--quick"], True),
    (["neuralsight", "train", "classify", "--quik"], False),
    (["neuralsight", "eval", "runs/x", "--split", "val"], True),
    (["neuralsight", "predict", "runs/x", "--horizon", "soon"], False),
    (["neuralsight", "trian", "classify"], False),
    (["neuralsight", "train", "textgen", "--set", "model.cell=lstm"], True),
    (["neuralsight", "train", "textgen", "--set", "model.cel=lstm"], False),
    (["neuralsight", "train", "classify", "--preset", "nonesuch"], False),
    (["neuralsight", "data", "fetch", "--demo"], True),
    ([".venv/bin/torchrun", "--standalone", "-m", "neuralsight", "train", "segment", "--max-time", "10"], True),
    (["make", "demo"], True),
    (["make", "deploy"], False),
])
def test_the_check_itself_tells_good_from_bad(words, ok):
    if ok:
        check(words)
    else:
        with pytest.raises((typer.TyperException, AssertionError, UserError)):
            check(words)


def test_readme_lecture_table_is_what_the_command_prints():
    from typer.testing import CliRunner

    from neuralsight.cli import app

    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- lecture:begin -->\n")[1].split("<!-- lecture:end -->")[0]
    res = CliRunner().invoke(app, ["lecture", "--list", "--markdown"])
    assert res.exit_code == 0, res.output
    assert table == res.stdout, "README's lecture table is stale: paste `neuralsight lecture --list --markdown`"

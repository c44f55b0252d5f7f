"""The shape of the code that issue 12 fixed: small task modules, a docstring atop every file, one way imports run.

These are facts a reviewer would otherwise re-check by hand after every change.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "neuralsight"

def _task_modules() -> list[Path]:
    """The module of every registered task (tasks/base.py, the protocol, and tasks/segmentation.py, shared
    helpers, are not tasks)."""
    import inspect

    from neuralsight.tasks.base import get_task, list_tasks

    files = {Path(inspect.getfile(type(get_task(name)))) for name in list_tasks()}
    return sorted(f for f in files if f.parent == SRC / "tasks")  # not the test suite's own toy tasks


TASK_MODULES = _task_modules()
assert len(TASK_MODULES) >= 5, TASK_MODULES
IMPORTS_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "imports.py"


@pytest.mark.parametrize("path", TASK_MODULES, ids=lambda p: p.name)
def test_every_task_module_is_at_most_350_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 350, f"{path.relative_to(SRC)} has {lines} lines; move helpers out (tasks/segmentation.py, viz/)"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_every_file_opens_with_a_docstring_saying_what_it_holds(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 3, f"{path.relative_to(SRC)} has no opening docstring"


@pytest.mark.skipif(not IMPORTS_TOOL.is_file(), reason=f"{IMPORTS_TOOL} is not beside this checkout")
def test_imports_have_no_cycles_and_no_upward_imports():
    out = subprocess.run([sys.executable, str(IMPORTS_TOOL), str(SRC)], capture_output=True, text=True, check=False)
    last = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0 and last.endswith("0 cycles, 0 upward"), out.stdout + out.stderr


def test_tomllib_is_read_through_config_so_python_3_10_works():
    """requires-python is >= 3.10, where tomllib does not exist: only config.py imports it, with tomli as the
    fallback (a dependency below 3.11); every other module reads TOML through neuralsight.config."""
    importers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            if "tomllib" in names:
                importers.append(path.relative_to(SRC).as_posix())
    assert importers == ["config.py"], importers
    assert "import tomli as tomllib" in (SRC / "config.py").read_text(encoding="utf-8")

"""`make demo` and `make test` set everything up (issue 10 item 1): `neuralsight data fetch --demo` and
`neuralsight data fetch NAME...` get what is missing (Debian's package as root, the exact sudo line otherwise,
else the checksummed download), the Makefile calls them before the demo and the tests, and .ci/run installs
what the offline CI cannot fetch. apt is always a fake here; downloads come from test_download's local server.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_download import Server
from test_ensure import SUDO, FakeApt, fashion_like
from typer.testing import CliRunner

from neuralsight.data import catalog
from neuralsight.data.catalog import ensure

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _invoke(*args):
    from neuralsight.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def server():
    with Server() as s:
        yield s


def _host(monkeypatch, has_apt: bool, is_root: bool, apt=None):
    host = ensure.Host(has_apt=has_apt, is_root=is_root, **({"run": apt} if apt else {}))
    monkeypatch.setattr(ensure.Host, "current", classmethod(lambda cls: host))


def test_demo_datasets_are_those_of_every_demo_run():
    from neuralsight.cli.train import demo_datasets, demo_plan
    from neuralsight.tasks.base import get_task, resolve_config

    plan = demo_plan()
    assert {task for task, _, _ in plan} >= {"classify", "textgen", "segment", "segment3d", "forecast"}
    expected = {resolve_config(get_task(task), preset, quick=True).data.dataset for task, preset, _ in plan}
    assert set(demo_datasets()) == expected & set(catalog.CATALOG)
    assert {"fashion-mnist", "romeo-juliet", "oxford-pets", "msd-hippocampus", "covid-hu"} <= set(demo_datasets())


def test_fetch_demo_with_everything_present_changes_nothing(monkeypatch, tmp_path):
    from conftest import shared_data

    from neuralsight.cli.train import demo_datasets

    for name in demo_datasets():
        shared_data(name)
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    _host(monkeypatch, has_apt=True, is_root=True, apt=FakeApt(tmp_path / "never"))
    res = _invoke("data", "fetch", "--demo")
    assert res.exit_code == 0, res.output
    for name in demo_datasets():
        assert f"{name} is already at {catalog.find(name)}" in res.stdout
    assert not (tmp_path / "cache").exists() and not (tmp_path / "never").exists()


def test_fetch_as_root_with_apt_installs_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    fashion_like(tmp_path, monkeypatch)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist")
    _host(monkeypatch, has_apt=True, is_root=True, apt=apt)
    res = _invoke("data", "fetch", "fashion-mnist")
    assert res.exit_code == 0, res.output
    assert apt.commands == [["apt-get", "install", "-y", "dataset-fashion-mnist"]]
    assert (f"fashion-mnist: installed with `apt-get install -y dataset-fashion-mnist`: "
            f"{tmp_path / 'system' / 'fashion-mnist'}") in res.stdout


def test_fetch_as_a_user_downloads_and_prints_the_sudo_line(monkeypatch, tmp_path, server):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    fashion_like(tmp_path, monkeypatch, server)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist")
    _host(monkeypatch, has_apt=True, is_root=False, apt=apt)
    res = _invoke("data", "fetch", "--no-progress", "fashion-mnist")
    assert res.exit_code == 0, res.output
    assert apt.commands == [] and len(server.log) == 1
    assert f"fashion-mnist: downloaded: {tmp_path / 'cache' / 'fashion-mnist'}" in res.stdout
    assert f"a system-wide copy for every user instead: {SUDO}" in res.stdout


def test_fetch_that_cannot_get_one_dataset_gets_the_others_then_exits_2(monkeypatch, tmp_path):
    """Offline, not root: Fashion-MNIST cannot be had (the sudo line leads its message); covid-hu is found."""
    from conftest import shared_data

    shared_data("covid-hu")
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    entry = fashion_like(tmp_path, monkeypatch)  # no download URL: like a machine without internet
    assert entry.downloads == ()
    _host(monkeypatch, has_apt=True, is_root=False, apt=FakeApt(tmp_path / "s"))
    res = _invoke("data", "fetch", "fashion-mnist", "covid-hu")
    assert res.exit_code == 2, res.output
    assert "covid-hu is already at" in res.stdout
    (line,) = [x for x in res.stderr.splitlines() if x.strip()]
    assert line.startswith(f"error: run `{SUDO}`; dataset 'fashion-mnist' not found"), line


def test_fetch_needs_a_name_or_demo_and_refuses_unknown_names_first(monkeypatch, tmp_path):
    res = _invoke("data", "fetch")
    assert res.exit_code == 2 and "name the datasets to fetch, or pass --demo" in res.stderr
    res = _invoke("data", "fetch", "covid-hu", "nope")
    assert res.exit_code == 2 and "unknown dataset 'nope'" in res.stderr and "already at" not in res.stdout


# ---- the Makefile and CI --------------------------------------------------------------------------------

def _make_variable(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(rf"^{name}\s*:=(.*)$", text, re.M).group(1).split()


def _dry_run(target: str) -> list[str]:
    done = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})
    return done.stdout.replace("\\\n", " ").splitlines()  # a recipe line continued with a backslash: one


def test_make_test_fetches_every_dataset_the_tests_read():
    """TEST_DATASETS covers every catalog dataset named in a test (shared_data, find, a task case's data)."""
    named = set()
    for path in (ROOT / "tests").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"""(?:shared_data|find|locate)\(["']([a-z0-9-]+)["']""", text))
        named |= set(re.findall(r"""data=["']([a-z0-9-]+)["']""", text))
    named &= set(catalog.CATALOG)
    assert {"fashion-mnist", "oxford-pets", "kits19-kidney-2d-mini"} <= named  # the scan finds them
    listed = _make_variable("TEST_DATASETS")
    assert not named - set(listed), f"add to TEST_DATASETS in the Makefile: {sorted(named - set(listed))}"
    assert set(listed) <= set(catalog.CATALOG)


@pytest.mark.skipif(subprocess.run(["which", "make"], capture_output=True).returncode, reason="no make")
def test_make_fetches_before_the_demo_and_the_tests():
    lines = _dry_run("demo")
    fetch = next(i for i, x in enumerate(lines) if "neuralsight data fetch --demo" in x)
    run = next(i for i, x in enumerate(lines) if x.rstrip().endswith("neuralsight demo"))
    assert fetch < run
    lines = _dry_run("test")
    fetch = next(i for i, x in enumerate(lines) if "neuralsight data fetch" in x)
    assert all(name in lines[fetch] for name in _make_variable("TEST_DATASETS"))
    assert "||" in lines[fetch]  # a dataset that cannot be had leaves its tests to skip with the reason
    assert fetch < next(i for i, x in enumerate(lines) if "-m pytest" in x)


def test_ci_installs_the_debian_dataset_and_the_browser_then_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=True)
    assert "dataset-fashion-mnist" in script and "chromium" in script and 'apt-get install -y -qq "$package"' in script
    assert "playwright install" not in script  # the browser comes from Debian, never a download
    assert script.rstrip().endswith("make test")

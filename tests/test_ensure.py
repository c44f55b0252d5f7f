"""ensure_present: found copy, apt as root, the sudo line otherwise, checksummed download, and clear failures.

apt is always a fake here (a recorded command list); downloads go to the local HTTP server of test_download.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from test_download import Server, make_tar

from neuralsight.data import catalog
from neuralsight.data.catalog import Host, ensure_present
from neuralsight.errors import DataError

SUDO = "sudo apt-get install -y dataset-fashion-mnist"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)


@pytest.fixture
def server():
    with Server() as s:
        yield s


class FakeApt:
    """Records commands; ``install`` creates the system copy, as the Debian package would."""

    def __init__(self, system: Path, codes: dict[str, list[int]] | None = None):
        self.system, self.commands = system, []
        self.codes = codes or {}          # "install" / "update" -> exit codes, one per call

    def __call__(self, command):
        self.commands.append(list(command))
        verb = command[1]
        code = self.codes.get(verb, [0]).pop(0) if self.codes.get(verb) else 0
        if code == 0 and verb == "install":
            self.system.mkdir(parents=True, exist_ok=True)
            (self.system / "a.txt").write_text("installed")
        return code, "" if code == 0 else "E: Unable to locate package dataset-fashion-mnist"


def fashion_like(tmp_path, monkeypatch, server: Server | None = None, corrupt: bool = False):
    """The real fashion-mnist entry, shrunk: one file, its system path in tmp, downloads from ``server``."""
    real = catalog.get("fashion-mnist")
    downloads = ()
    if server is not None:
        archive = make_tar({"fashion/a.txt": b"downloaded"})
        server.files["/fashion.tar.gz"] = archive
        sha = "0" * 64 if corrupt else hashlib.sha256(archive).hexdigest()
        downloads = (catalog.Download(server.url("/fashion.tar.gz"), "fashion.tar.gz", sha, unpack=True,
                                      strip="fashion"),)
    entry = dataclasses.replace(real, layouts=(catalog.Layout("one file", ("a.txt",)),), downloads=downloads,
                                system_paths=(str(tmp_path / "system" / "fashion-mnist"),))
    monkeypatch.setitem(catalog.CATALOG, "fashion-mnist", entry)
    return entry


def test_found_copy_runs_nothing(tmp_path, monkeypatch):
    fashion_like(tmp_path, monkeypatch)
    system = tmp_path / "system" / "fashion-mnist"
    system.mkdir(parents=True)
    (system / "a.txt").write_text("x")
    apt = FakeApt(system)
    got = ensure_present("fashion-mnist", host=Host(has_apt=True, is_root=True, run=apt))
    assert (got.how, got.folder, apt.commands) == ("found", system, [])


def test_root_with_apt_installs_the_debian_package(tmp_path, monkeypatch, server):
    fashion_like(tmp_path, monkeypatch, server)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist")
    got = ensure_present("fashion-mnist", download=True, host=Host(has_apt=True, is_root=True, run=apt))
    assert got.how == "apt" and got.folder == tmp_path / "system" / "fashion-mnist"
    assert apt.commands == [["apt-get", "install", "-y", "dataset-fashion-mnist"]] == got.commands
    assert server.log == []                                                 # no download


def test_root_apt_updates_lists_then_retries(tmp_path, monkeypatch):
    fashion_like(tmp_path, monkeypatch)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist", {"install": [100, 0]})
    got = ensure_present("fashion-mnist", host=Host(has_apt=True, is_root=True, run=apt))
    assert got.how == "apt"
    assert apt.commands == [["apt-get", "install", "-y", "dataset-fashion-mnist"], ["apt-get", "update"],
                            ["apt-get", "install", "-y", "dataset-fashion-mnist"]]


def test_root_apt_failing_falls_back_to_the_download(tmp_path, monkeypatch, server):
    fashion_like(tmp_path, monkeypatch, server)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist", {"install": [100, 100]})
    got = ensure_present("fashion-mnist", download=True, progress=False,
                         host=Host(has_apt=True, is_root=True, run=apt))
    assert got.how == "download" and got.folder == tmp_path / "cache" / "fashion-mnist"
    assert (got.folder / "a.txt").read_text() == "downloaded"
    assert "exited 100: E: Unable to locate package" in got.notes[0]
    assert len(apt.commands) == 3 and len(server.log) == 1


def test_not_root_gets_the_sudo_line_and_the_download(tmp_path, monkeypatch, server):
    fashion_like(tmp_path, monkeypatch, server)
    apt = FakeApt(tmp_path / "system" / "fashion-mnist")
    got = ensure_present("fashion-mnist", download=True, progress=False,
                         host=Host(has_apt=True, is_root=False, run=apt))
    assert apt.commands == []                                               # never tries apt without root
    assert got.how == "download" and got.advice == SUDO
    assert (tmp_path / "cache" / "fashion-mnist" / "a.txt").read_text() == "downloaded"


def test_not_root_and_offline_raises_with_the_exact_sudo_line(tmp_path, monkeypatch, server):
    fashion_like(tmp_path, monkeypatch, server)
    monkeypatch.setenv("NEURALSIGHT_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        ensure_present("fashion-mnist", host=Host(has_apt=True, is_root=False, run=FakeApt(tmp_path / "s")))
    message = str(err.value)
    assert message.startswith(f"run `{SUDO}`; dataset 'fashion-mnist' not found")
    assert "\n" not in message and server.log == []


def test_no_apt_downloads_and_a_corrupt_download_says_so(tmp_path, monkeypatch, server):
    fashion_like(tmp_path, monkeypatch, server)
    got = ensure_present("fashion-mnist", download=True, progress=False, host=Host(has_apt=False, is_root=True))
    assert got.how == "download" and got.advice == "" and got.commands == []
    fashion_like(tmp_path, monkeypatch, server, corrupt=True)
    (got.folder / "a.txt").unlink()
    with pytest.raises(DataError, match=r"Debian or Ubuntu, `sudo apt-get install -y dataset-fashion-mnist`.*"
                                        r"download failed: checksum error"):
        ensure_present("fashion-mnist", download=True, progress=False, host=Host(has_apt=False, is_root=False))


def test_datasets_without_a_package_use_the_catalog_download(tmp_path, monkeypatch, server):
    archive = make_tar({"toy/images/a.png": b"i", "toy/masks/a.png": b"m"})
    server.files["/toy.tar.gz"] = archive
    entry = catalog.Dataset(name="toy", description="", used_for="", licence="", task="segment",
                            layouts=(catalog.Layout("folders", ("images", "masks")),),
                            downloads=(catalog.Download(server.url("/toy.tar.gz"), "toy.tar.gz",
                                                        hashlib.sha256(archive).hexdigest(), unpack=True,
                                                        strip="toy"),))
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    apt = FakeApt(tmp_path / "s")
    got = ensure_present("toy", download=True, progress=False, host=Host(has_apt=True, is_root=True, run=apt))
    assert got.how == "download" and (got.folder / "masks" / "a.png").read_bytes() == b"m"
    assert apt.commands == [] and got.advice == ""
    assert ensure_present("toy", host=Host(has_apt=True, is_root=True, run=apt)).how == "found"


def test_no_download_no_package_is_the_missing_message():
    with pytest.raises(DataError, match="dataset 'dental-xray' not found: need images, masks.*no direct download"):
        ensure_present("dental-xray", data_dir="/nonexistent", download=True, host=Host(has_apt=True, is_root=True))


def test_current_host_reads_the_machine(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert Host.current() == Host(has_apt=True, is_root=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert Host.current() == Host(has_apt=False, is_root=True)

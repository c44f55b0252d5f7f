"""Downloads against a local HTTP server started here: good, corrupt, interrupted+resumed, escaping archives."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuralsight.data import catalog
from neuralsight.data.catalog import Dataset, Download, Layout
from neuralsight.data.catalog.entries import COVID_HU_SHA256
from neuralsight.data.catalog.prepare import COVID_HU, COVID_RAW
from neuralsight.data.catalog.verify import file_digest
from neuralsight.data.download import DownloadInterrupted, fetch_dataset, fetch_file, unpack
from neuralsight.errors import DataError
from neuralsight.io import cache_root

PAYLOAD = bytes(range(256)) * 40          # 10,240 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Server:
    """A tiny HTTP file server with Range support, a request log and a switch to cut transfers short."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}       # path -> bytes to send before closing (applies once)
        self.ignore_range = False
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5          # a stuck client cannot hold a handler thread for long

            def log_message(self, *args):   # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = server.cut.pop(self.path, None)
                if limit is not None:
                    self.wfile.write(body[:limit])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        # Bounded: even if a test forgets to stop it, the server shuts itself down after 60 s.
        self.watchdog = threading.Timer(60, self.httpd.shutdown)
        self.watchdog.daemon = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        self.watchdog.start()
        return self

    def __exit__(self, *exc):
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    with Server() as s:
        yield s


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "250")


def closed_port_url() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/nothing.bin"


# ------------------------------------------------------------------------------------------ fetch_file


def test_good_file(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "out" / "a.bin"
    fetch_file(Download(server.url("/a.bin"), "a.bin", SHA, md5=MD5, size=len(PAYLOAD)), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("a.bin.part").exists()


def test_corrupt_file_leaves_nothing(server, tmp_path):
    bad = bytearray(PAYLOAD)
    bad[5000] ^= 0xFF
    server.files["/a.bin"] = bytes(bad)
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DataError, match=r"checksum error for a\.bin.*sha256.*deleted"):
        fetch_file(Download(server.url("/a.bin"), "a.bin", SHA), dest, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_md5_and_size_are_checked(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(DataError, match="md5"):
        fetch_file(Download(server.url("/a.bin"), "a.bin", md5="0" * 32), tmp_path / "a.bin", progress=False)
    with pytest.raises(DataError, match="10240 bytes, expected 10241"):
        fetch_file(Download(server.url("/a.bin"), "a.bin", SHA, size=len(PAYLOAD) + 1), tmp_path / "a.bin",
                   progress=False)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.cut["/a.bin"] = 3000
    dl = Download(server.url("/a.bin"), "a.bin", SHA)
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadInterrupted, match="stopped at 3000 of 10240 bytes"):
        fetch_file(dl, dest, progress=False)
    assert not dest.exists()
    assert dest.with_name("a.bin.part").stat().st_size == 3000
    fetch_file(dl, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.log == [("/a.bin", None), ("/a.bin", "bytes=3000-")]
    assert not dest.with_name("a.bin.part").exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.cut["/a.bin"] = 4000
    server.ignore_range = True
    dl = Download(server.url("/a.bin"), "a.bin", SHA)
    with pytest.raises(DownloadInterrupted):
        fetch_file(dl, tmp_path / "a.bin", progress=False)
    fetch_file(dl, tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_complete_part_is_verified_without_refetch(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    fetch_file(Download(server.url("/a.bin"), "a.bin", SHA), tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert server.log == [("/a.bin", "bytes=10240-")]      # answered 416: nothing left to send


def test_mirror_used_when_first_url_fails(server, tmp_path):
    server.files["/b.bin"] = PAYLOAD
    dl = Download(server.url("/missing.bin"), "a.bin", SHA, mirrors=(server.url("/b.bin"),))
    fetch_file(dl, tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_offline_names_every_url(tmp_path):
    url = closed_port_url()
    with pytest.raises(DataError, match=r"could not download a\.bin: http://127\.0\.0\.1:\d+/nothing\.bin"):
        fetch_file(Download(url, "a.bin", SHA), tmp_path / "a.bin", progress=False, timeout=2)
    assert not (tmp_path / "a.bin.part").exists() or (tmp_path / "a.bin.part").stat().st_size == 0


# ------------------------------------------------------------------------------------------ unpacking


def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("members,links,message", [
    ({"ok.txt": b"x", "../evil.txt": b"boom"}, None, "points outside"),
    ({"ok.txt": b"x", "sub/../../evil.txt": b"boom"}, None, "points outside"),
    ({"/tmp/evil-absolute.txt": b"boom"}, None, "absolute path"),
    ({"ok.txt": b"x"}, {"link": "../../etc"}, "links outside"),
    ({"ok.txt": b"x"}, {"link": "/etc/passwd"}, "links outside"),
])
def test_escaping_tar_is_refused_before_writing(tmp_path, members, links, message):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar(members, links))
    target = tmp_path / "deep" / "target"
    with pytest.raises(DataError, match=message):
        unpack(archive, target)
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert list(target.iterdir()) == []           # nothing written, not even the harmless member


def test_escaping_zip_is_refused(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "x")
        zf.writestr("../evil.txt", "boom")
    with pytest.raises(DataError, match="points outside"):
        unpack(archive, tmp_path / "target")
    assert not (tmp_path / "evil.txt").exists() and list((tmp_path / "target").iterdir()) == []


def test_tar_with_inner_links_and_strip(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar({"Top/imagesTr/a.nii.gz": b"1", "Top/labelsTr/a.nii.gz": b"2", "Other/x": b"3"},
                                 {"Top/imagesTr/b.nii.gz": "a.nii.gz"}))
    written = unpack(archive, tmp_path / "t", strip="Top")
    assert (tmp_path / "t" / "imagesTr" / "a.nii.gz").read_bytes() == b"1"
    assert (tmp_path / "t" / "imagesTr" / "b.nii.gz").read_bytes() == b"1"
    assert not (tmp_path / "t" / "Other").exists()
    assert len(written) == 3


def test_zip_and_single_gz(tmp_path):
    import gzip

    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("d/one.txt", "one")
    unpack(z, tmp_path / "t")
    assert (tmp_path / "t" / "d" / "one.txt").read_text() == "one"
    g = tmp_path / "two.txt.gz"
    g.write_bytes(gzip.compress(b"two"))
    unpack(g, tmp_path / "t")
    assert (tmp_path / "t" / "two.txt").read_bytes() == b"two"


# ------------------------------------------------------------------------------------------ datasets


def toy_entry(server: Server, archive: bytes, sha: str | None = None) -> Dataset:
    server.files["/toy.tar.gz"] = archive
    return Dataset(
        name="toy", description="toy set", used_for="tests", licence="CC0",
        layouts=(Layout("folders", ("images", "masks")),),
        downloads=(Download(server.url("/toy.tar.gz"), "toy.tar.gz", sha or hashlib.sha256(archive).hexdigest(),
                            unpack=True, strip="toy"),),
        obtain="make it yourself")


def test_fetch_dataset_assembles_and_cleans_up(server, tmp_path):
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/masks/a.png": b"mask"}))
    target = tmp_path / "cache" / "toy"
    assert fetch_dataset(entry, target, progress=False) == target
    assert (target / "images" / "a.png").read_bytes() == b"img"
    assert sorted(p.name for p in target.parent.iterdir()) == ["toy"]      # no staging or downloads left


def test_fetch_dataset_escaping_archive_leaves_nothing(server, tmp_path):
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/../../../escaped.txt": b"boom"}))
    target = tmp_path / "cache" / "toy"
    with pytest.raises(DataError, match="points outside"):
        fetch_dataset(entry, target, progress=False)
    assert not target.exists()
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".toy")]


def test_fetch_dataset_corrupt_download_leaves_nothing(server, tmp_path):
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/masks/a.png": b"m"}), sha="0" * 64)
    target = tmp_path / "cache" / "toy"
    with pytest.raises(DataError, match="checksum error"):
        fetch_dataset(entry, target, progress=False)
    assert not target.exists()
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_fetch_dataset_refuses_incomplete_layout(server, tmp_path):
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img"}))           # no masks/
    with pytest.raises(DataError, match="does not verify: missing masks"):
        fetch_dataset(entry, tmp_path / "cache" / "toy", progress=False)
    assert not (tmp_path / "cache" / "toy").exists()


# ------------------------------------------------------------------------------------------ CLI


def _invoke(*args):
    from neuralsight.cli import app

    return CliRunner().invoke(app, list(args))


def _no_traceback(result):
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_fetch_good_then_already_there(server, monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/masks/a.png": b"m"}))
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    result = _invoke("data", "fetch", "toy", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache" / "toy" / "masks" / "a.png").read_bytes() == b"m"
    again = _invoke("data", "fetch", "toy")
    assert again.exit_code == 0 and "already at" in again.output
    assert len(server.log) == 1


def test_cli_fetch_corrupt_exits_2(server, monkeypatch, tmp_path):
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/masks/a.png": b"m"}), sha="0" * 64)
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    result = _invoke("data", "fetch", "toy", "--no-progress")
    assert result.exit_code == 2
    assert "checksum error" in result.output
    _no_traceback(result)
    assert not (tmp_path / "cache" / "toy").exists()


def test_cli_fetch_interrupted_then_resumed(server, monkeypatch, tmp_path):
    archive = make_tar({"toy/images/a.png": PAYLOAD, "toy/masks/a.png": b"m"})
    entry = toy_entry(server, archive)
    server.cut["/toy.tar.gz"] = len(archive) // 2
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    first = _invoke("data", "fetch", "toy", "--no-progress")
    assert first.exit_code == 2 and "run the same command again to resume" in first.output
    _no_traceback(first)
    second = _invoke("data", "fetch", "toy", "--no-progress")
    assert second.exit_code == 0, second.output
    assert server.log[1] == ("/toy.tar.gz", f"bytes={len(archive) // 2}-")
    assert (tmp_path / "cache" / "toy" / "images" / "a.png").read_bytes() == PAYLOAD


def test_cli_fetch_offline_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    entry = dataclasses.replace(catalog.get("tinyshakespeare"),
                                downloads=(Download(closed_port_url(), "tinyshakespeare.txt", "0" * 64),))
    monkeypatch.setitem(catalog.CATALOG, "tinyshakespeare", entry)
    result = _invoke("data", "fetch", "tinyshakespeare", "--no-progress", "--timeout", "2")
    assert result.exit_code == 2
    _no_traceback(result)
    out = " ".join(result.output.split())
    assert "dataset 'tinyshakespeare' not found: need tinyshakespeare.txt" in out
    assert str(tmp_path / "cache" / "tinyshakespeare") in out                    # the places looked
    assert "127.0.0.1" in out and "download failed" in out                       # the URL and what happened
    assert "github.com/karpathy/char-rnn" in out                                 # how to get it otherwise
    assert out.count("error:") == 1


def test_cli_fetch_without_download_exits_2(monkeypatch):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    result = _invoke("data", "fetch", "liver-ct-2d")
    assert result.exit_code == 2
    assert "no direct download" in " ".join(result.output.split())
    _no_traceback(result)


def test_locate_downloads_when_allowed(server, monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    entry = toy_entry(server, make_tar({"toy/images/a.png": b"img", "toy/masks/a.png": b"m"}))
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    monkeypatch.setenv("NEURALSIGHT_OFFLINE", "1")
    with pytest.raises(DataError, match="dataset 'toy' not found"):
        catalog.locate("toy")
    assert server.log == []
    monkeypatch.delenv("NEURALSIGHT_OFFLINE")
    assert catalog.locate("toy") == tmp_path / "cache" / "toy"
    assert catalog.locate("toy") == tmp_path / "cache" / "toy"     # found in the cache: no second download
    assert len(server.log) == 1


def test_locate_reports_download_failure(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    entry = dataclasses.replace(catalog.get("msd-hippocampus"),
                                downloads=(Download(closed_port_url(), "Task04_Hippocampus.tar", "0" * 64,
                                                    unpack=True),))
    monkeypatch.setitem(catalog.CATALOG, "msd-hippocampus", entry)
    with pytest.raises(DataError, match=r"not found: need imagesTr.*download failed: could not download") as err:
        catalog.locate("msd-hippocampus", data_dir=tmp_path / "nowhere", download=True)
    assert str(tmp_path / "nowhere") in str(err.value)


def test_default_paths_unused(tmp_path):
    # guard: the autouse fixture keeps every test inside tmp_path
    assert cache_root() == tmp_path / "cache"
    assert Path.home() / ".cache" / "neuralsight" != cache_root()


def test_fetch_covid_derives_the_series(server, monkeypatch, tmp_path):
    from conftest import shared_data

    raw = (shared_data("covid-hu") / COVID_RAW).read_bytes()
    server.files["/raw.csv"] = raw
    real = catalog.get("covid-hu")
    entry = dataclasses.replace(real, downloads=(dataclasses.replace(real.downloads[0], url=server.url("/raw.csv")),))
    target = fetch_dataset(entry, tmp_path / "cache" / "covid-hu", progress=False)
    assert file_digest(target / COVID_HU) == COVID_HU_SHA256
    assert catalog.check(entry, target).verified == "yes"


def test_progress_bar_shows_a_file_name_with_brackets_as_it_is():
    from neuralsight.data.download import _bar

    bar = _bar("scans[old].tar", total=10, done=0, enabled=True)
    with bar as advance:
        advance(5)
        shown = bar.progress.columns[0].render(bar.progress.tasks[0]).plain
    assert shown == "scans[old].tar"

"""Downloads: streaming with a progress bar, resume (HTTP Range), checksums, atomic rename, safe unpacking.

A file is fetched into ``<dest>.part``; an interrupted transfer leaves the ``.part`` for the next call to
resume with ``Range: bytes=N-``. When all bytes are in, the md5/sha256/size recorded in the catalog are
checked: a mismatch deletes the ``.part`` (nothing corrupt stays on disk) and raises :class:`DataError`;
a match renames the file into place (``os.replace``, atomic on one filesystem).

A dataset is assembled in a staging folder next to its cache folder (downloads moved in, archives
unpacked, derived files written) and renamed into place only when complete, so an interrupted or failed
fetch never leaves a half dataset where the catalog's ``find`` would take it for a real one.

Archives are unpacked only after every member has been checked: absolute paths, ``..`` components,
links pointing outside the target, devices and fifos are refused (the whole archive, before anything is
written).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from neuralsight.data.catalog.prepare import PREPARE
from neuralsight.data.catalog.sources import Dataset, Download
from neuralsight.data.catalog.verify import check
from neuralsight.errors import DataError
from neuralsight.io import cache_root

TIMEOUT = 30.0            # seconds a socket may stay silent (connect or read)
CHUNK = 1 << 16
USER_AGENT = "neuralsight-data/1"


class DownloadInterrupted(DataError):
    """The transfer stopped before the end; the ``.part`` file stays for the next call to resume."""


def _hashers(dl: Download) -> dict:
    out = {}
    if dl.sha256:
        out["sha256"] = hashlib.sha256()
    if dl.md5:
        out["md5"] = hashlib.md5()
    return out


def _verify_part(part: Path, dl: Download, url: str) -> None:
    size = part.stat().st_size
    problems = []
    if dl.size is not None and size != dl.size:
        problems.append(f"{size} bytes, expected {dl.size}")
    hashers = _hashers(dl)
    if hashers:
        with open(part, "rb") as f:
            while block := f.read(1 << 20):
                for h in hashers.values():
                    h.update(block)
        for algo, h in hashers.items():
            want = getattr(dl, algo)
            if h.hexdigest() != want.lower():
                problems.append(f"{algo} {h.hexdigest()}, expected {want}")
    if problems:
        part.unlink(missing_ok=True)
        raise DataError(f"checksum error for {dl.filename} from {url}: {'; '.join(problems)}; the download was "
                        "deleted", "run the command again; if it fails again the server's copy has changed")


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def fetch_file(dl: Download, dest: Path, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """Download ``dl`` to ``dest`` (resuming ``dest.part``), verify it, rename it into place.

    Tries ``dl.url`` then each mirror; a network error on one moves to the next. Raises
    :class:`DownloadInterrupted` when a transfer stopped early (the ``.part`` is kept), :class:`DataError` on a
    checksum mismatch (the ``.part`` is deleted) or when every URL failed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in dl.urls:
        before = part.stat().st_size if part.exists() else 0
        try:
            _transfer(url, part, dl, progress, timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            errors.append(f"{url}: {reason}")
            if part.exists() and part.stat().st_size > before:
                # The transfer started and broke: keep the bytes, let the next call resume them.
                raise DownloadInterrupted(f"download of {dl.filename} from {url} stopped at "
                                  f"{part.stat().st_size} bytes ({reason})",
                                  "run the same command again to resume") from None
            continue
        _verify_part(part, dl, url)
        os.replace(part, dest)
        return dest
    raise DataError(f"could not download {dl.filename}: {'; '.join(errors)}",
                    "check the network connection or copy the file by hand")


def _transfer(url: str, part: Path, dl: Download, progress: bool, timeout: float) -> None:
    start = part.stat().st_size if part.exists() else 0
    if dl.size is not None and start >= dl.size:
        return   # complete already: the caller verifies it
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:   # nothing left to send: the part is complete (or wrong: verify says)
            return
        raise
    with response:
        status = response.status
        if start and status != 206:
            start = 0   # the server ignored Range: start again from byte 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else dl.size
        received = start
        with open(part, "ab" if start else "wb") as out, _bar(dl.filename, total, start, progress) as advance:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                out.write(block)
                received += len(block)
                advance(len(block))
    if total is not None and received < total:
        raise DownloadInterrupted(f"download of {dl.filename} from {url} stopped at {received} of {total} bytes",
                          "run the same command again to resume")


class _bar:
    """A rich progress bar for one file (a no-op when ``enabled`` is False)."""

    def __init__(self, label: str, total: int | None, done: int, enabled: bool):
        self.label, self.total, self.done, self.enabled = label, total, done, enabled
        self.progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), transient=False)
        self.progress.start()
        # The label is data (a file name): escaped, so "[old]" in it is shown, not taken for rich markup.
        task = self.progress.add_task(escape(self.label), total=self.total, completed=self.done)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


# --------------------------------------------------------------------------------------------- unpacking


def _safe_relpath(name: str, strip: str | None) -> PurePosixPath | None:
    """The member's path relative to the target, or None to skip it; raises DataError if it escapes."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"archive entry '{name}' has an absolute path", "refusing to unpack this archive")
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"archive entry '{name}' points outside the target folder",
                        "refusing to unpack this archive")
    if strip:
        if not parts or parts[0] != strip:
            return None
        parts = parts[1:]
    return PurePosixPath(*parts) if parts else None


def _link_inside(rel: PurePosixPath, link: str, hard: bool) -> bool:
    if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
        return False
    base = [] if hard else list(rel.parent.parts)
    depth = len(base)
    for p in PurePosixPath(link).parts:
        if p == "..":
            depth -= 1
            if depth < 0:
                return False
        elif p not in ("", "."):
            depth += 1
    return True


def _check_tar(tar: tarfile.TarFile, strip: str | None) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    plan = []
    for member in tar.getmembers():
        rel = _safe_relpath(member.name, strip)
        if rel is None:
            continue
        if member.issym() or member.islnk():
            link = member.linkname
            if member.islnk():
                target = _safe_relpath(link, strip)
                ok = target is not None
            else:
                ok = _link_inside(rel, link, hard=False)
            if not ok:
                raise DataError(f"archive entry '{member.name}' links outside the target folder ({link})",
                                "refusing to unpack this archive")
        elif not (member.isfile() or member.isdir()):
            raise DataError(f"archive entry '{member.name}' is a device or fifo", "refusing to unpack this archive")
        plan.append((member, rel))
    return plan


def unpack(archive: Path, target: Path, strip: str | None = None) -> list[Path]:
    """Extract a .tar(.gz/.bz2/.xz), .zip or single-file .gz into ``target``; returns the paths written.

    Every entry is checked before anything is written: absolute paths, ``..``, links leaving ``target``,
    devices and fifos make the whole archive refused with :class:`DataError`.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            plan = _check_tar(tar, strip)
            for member, rel in plan:
                out = target / rel
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if member.issym():
                    out.symlink_to(member.linkname)
                elif member.islnk():
                    os.link(target / _safe_relpath(member.linkname, strip), out)
                else:
                    src = tar.extractfile(member)
                    with src, open(out, "wb") as f:
                        shutil.copyfileobj(src, f, CHUNK)
                    os.chmod(out, 0o644 | (member.mode & 0o111))
                written.append(out)
        return written
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            plan = []
            for info in zf.infolist():
                rel = _safe_relpath(info.filename, strip)
                if rel is None:
                    continue
                kind = (info.external_attr >> 16) & 0o170000
                if kind == 0o120000:
                    raise DataError(f"archive entry '{info.filename}' is a symbolic link",
                                    "refusing to unpack this archive")
                plan.append((info, rel))
            for info, rel in plan:
                out = target / rel
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, CHUNK)
                written.append(out)
        return written
    if archive.suffix == ".gz":
        import gzip

        out = target / archive.name[:-3]
        with gzip.open(archive) as src, open(out, "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
        return [out]
    raise DataError(f"{archive} is not a tar, zip or gz archive", "delete it and fetch again")


# --------------------------------------------------------------------------------------------- datasets


def downloads_dir(name: str) -> Path:
    """Where partial and finished downloads of ``name`` wait until the dataset is assembled."""
    return cache_root() / ".downloads" / name


def fetch_dataset(entry: Dataset, target: Path, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """Download, verify and assemble ``entry`` into ``target``; returns ``target``.

    Downloads go to ``<cache>/.downloads/<name>/`` (resumable); the dataset is built in a staging folder
    beside ``target`` and renamed into place once complete and checked.
    """
    if not entry.downloads:
        raise DataError(f"dataset '{entry.name}' has no direct download", entry.obtain)
    target = Path(target)
    work = downloads_dir(entry.name)
    files = [fetch_file(dl, work / dl.filename, progress, timeout) for dl in entry.downloads]
    staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for dl, path in zip(entry.downloads, files, strict=True):
            if dl.unpack:
                unpack(path, staging, dl.strip)
            else:
                (staging / dl.filename).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, staging / dl.filename)
        if entry.prepare:
            PREPARE[entry.prepare](staging)
        result = check(entry, staging, full=False)
        if result.problems:
            raise DataError(f"downloaded '{entry.name}' does not verify: {'; '.join(result.problems)}",
                            "report this; the upstream files may have changed")
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.parent.rmdir()     # only when no other dataset's download is waiting there
    except OSError:
        pass
    return target


def _replace_dir(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


__all__: Iterable[str] = ("fetch_file", "fetch_dataset", "unpack", "DownloadInterrupted", "downloads_dir", "human_size")

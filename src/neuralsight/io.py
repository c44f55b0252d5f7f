"""Small file utilities shared by data/, viz/, engine/ and report/: atomic writes and the cache root.

Every file neuralsight writes goes to a temporary name in the target folder and is renamed into place, so a
crash never leaves a half-written file. ``tempfile.mkstemp`` creates files with mode 0600; a run directory is
meant to be read by others (a shared disk, a web server), so the final file gets the mode an ordinary
``open()`` would give it: ``0666`` minus the process umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it; restored at once
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_write_rows(path: Path, rows: list[dict]) -> None:
    """Dicts as comma-separated lines under a header of the first row's keys (values as ``str`` gives them)."""
    header = list(rows[0])
    atomic_write_text(path, "\n".join([",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]) + "\n")


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same suffix, so writers pick the format by it);
    rename it to ``path`` when the block succeeds, delete it when it fails."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(tmp, p)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cache_root() -> Path:
    """``$NEURALSIGHT_CACHE``, else ``~/.cache/neuralsight``: datasets, decoded image caches, downloads."""
    root = os.environ.get("NEURALSIGHT_CACHE") or Path.home() / ".cache" / "neuralsight"
    return Path(root).expanduser()


def cache_dir(kind: str) -> Path:
    """One sub-folder of the cache root per kind of content (a dataset name, ``seg-cache``, ``imagefolder``)."""
    return cache_root() / kind

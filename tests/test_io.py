"""neuralsight.io: atomic writes leave no temporary file behind and honour the umask (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from neuralsight import io as nsio


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        nsio.atomic_write_text(tmp_path / "a.txt", "x")
        with nsio.atomic_path(tmp_path / "b.png") as tmp:
            tmp.write_bytes(b"png")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.png"]


def test_failed_atomic_path_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), nsio.atomic_path(tmp_path / "c.png") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "c"))
    assert nsio.cache_dir("seg-cache") == tmp_path / "c" / "seg-cache"

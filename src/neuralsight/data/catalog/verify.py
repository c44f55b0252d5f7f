"""Is a dataset folder the catalogued copy? Layout, fixed-file checksums, file counts and one tree digest.

A dataset has one or more accepted layouts; the first whose required paths all exist is the one checked.
Small fixed files carry their sha256 (several accepted values where known re-packagings exist, e.g.
Debian's re-compressed Fashion-MNIST, whose decompressed content is checked when the bytes differ).
Large image/volume folders carry a file count per pattern and one *tree digest*: the sha256 of the sorted
lines ``"<sha256 of file>  <relative path>\\n"`` over the files the patterns match (the line format of
``sha256sum``). That keeps the package small (one 64-hex string per folder instead of thousands) and still
checks every byte; when a ``SHA256SUMS`` file sits in the dataset folder or its parent (as in
``shared/datasets``), a failing tree is narrowed down to the files that differ.

A tree that matched once is stamped (sizes and modification times, in the cache root) so ``data list``
need not hash gigabytes again; ``data verify`` always re-hashes.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.data.catalog.sources import Dataset
from neuralsight.io import atomic_write_text, cache_root

STAMPS = "verified.json"   # in the cache root: folder -> fingerprint of a copy whose digest matched


# --------------------------------------------------------------------------------------------- hashing


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def gunzip_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_files(folder: Path, patterns: Iterable[str]) -> list[list[str]]:
    """Per pattern, the sorted relative paths (``/``-separated) it matches; dot-files (``._x``) never match."""
    out = []
    for pattern in patterns:
        parent, _, leaf = pattern.rpartition("/")
        base = folder / parent if parent else folder
        names: list[str] = []
        if base.is_dir():
            with os.scandir(base) as it:
                names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_file()
                               and fnmatch.fnmatchcase(e.name, leaf))
        out.append([f"{parent}/{n}" if parent else n for n in names])
    return out


def tree_lines(folder: Path, relpaths: Iterable[str]) -> dict[str, str]:
    """relative path -> sha256 for each file."""
    return {rel: file_digest(folder / rel) for rel in relpaths}


def tree_digest(hashes: dict[str, str]) -> str:
    text = "".join(f"{hashes[rel]}  {rel}\n" for rel in sorted(hashes))
    return hashlib.sha256(text.encode()).hexdigest()


def _stat_fingerprint(folder: Path, relpaths: Iterable[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(relpaths):
        st = (folder / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _read_sums(folder: Path) -> dict[str, str]:
    """relative path -> sha256 from a SHA256SUMS in ``folder`` or its parent (paths made relative to folder)."""
    for sums, prefix in ((folder / "SHA256SUMS", ""), (folder.parent / "SHA256SUMS", folder.name + "/")):
        if not sums.is_file():
            continue
        out = {}
        for line in sums.read_text(errors="replace").splitlines():
            digest, _, rel = line.strip().partition("  ")
            rel = rel.lstrip("*").removeprefix("./")
            if rel.startswith(prefix):
                out[rel[len(prefix):]] = digest
        return out
    return {}


# --------------------------------------------------------------------------------------------- stamps


def _load_stamps() -> dict:
    try:
        return json.loads((cache_root() / STAMPS).read_text())
    except (OSError, ValueError):
        return {}


def _save_stamp(key: str, fingerprint: str) -> None:
    stamps = _load_stamps()
    stamps[key] = fingerprint
    try:
        cache_root().mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_root() / STAMPS, json.dumps(stamps, indent=1, sort_keys=True))
    except OSError:
        pass   # a read-only home only costs a re-hash next time


# --------------------------------------------------------------------------------------------- check


@dataclass
class CheckResult:
    """What :func:`check` found for one dataset folder."""

    name: str
    folder: Path | None
    layout: str = ""
    verified: str = "no"              # "yes" (checksums match), "count" (counts only: no checksum known), "no"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.folder is not None and not self.problems


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def check(entry: Dataset, folder: Path | str, full: bool = True,
          on_file: Callable[[str], None] | None = None) -> CheckResult:
    """Verify a dataset folder: required layout, fixed-file checksums, file counts and the tree digest.

    Args:
        entry: the catalog entry.
        folder: the dataset folder.
        full: hash trees even when a stamp from an earlier successful check matches the files' sizes and
            modification times (``data verify`` passes True; ``data list`` passes False).
        on_file: called with each relative path before it is hashed (progress).
    """
    name = entry.name
    folder = Path(folder)
    result = CheckResult(name, folder)
    layout = entry.matching_layout(folder)
    if layout is None:
        first = entry.layouts[0]
        missing = [rel for rel in first.required if not (folder / rel).exists()]
        result.problems.append(f"missing {', '.join(missing)} in {folder}")
        return result
    result.layout = layout.label
    has_checksum = False
    for rel, accepted in layout.checksums.items():
        path = folder / rel
        if not path.is_file():
            if rel in layout.required:
                result.problems.append(f"{rel} is not a file")
            continue
        has_checksum = True
        result.size += path.stat().st_size
        key, fingerprint = f"{name}:{path.resolve()}", _stat_fingerprint(folder, [rel])
        if not full and _load_stamps().get(key) == fingerprint:
            continue    # verified earlier and unchanged since
        if on_file:
            on_file(rel)
        digest = file_digest(path)
        if digest in accepted:
            _save_stamp(key, fingerprint)
            continue
        if rel in layout.content_sha256:
            try:
                same = gunzip_sha256(path) == layout.content_sha256[rel]
            except (OSError, EOFError) as err:
                result.problems.append(f"{rel}: not a readable gzip file ({err})")
                continue
            if same:
                result.notes.append(f"{rel}: other compression, identical content")
                _save_stamp(key, fingerprint)
                continue
        result.problems.append(f"{rel}: sha256 {digest[:12]}... is not the expected {accepted[0][:12]}...")
    if layout.tree is not None:
        has_checksum = _check_tree(entry, layout, folder, full, on_file, result) or has_checksum
    else:
        result.size += sum(_size_of(folder / rel) for rel in layout.required if rel not in layout.checksums)
    if result.problems:
        result.verified = "no"
    else:
        result.verified = "yes" if has_checksum else "count"
    return result


def _check_tree(entry: Dataset, layout, folder: Path, full: bool, on_file, result: CheckResult) -> bool:
    """Counts and digest of ``layout.tree`` into ``result``; True when a digest was compared."""
    tree = layout.tree
    matched = tree_files(folder, tree.patterns)
    for pattern, files, want in zip(tree.patterns, matched, tree.counts, strict=True):
        if len(files) != want:
            result.problems.append(f"{pattern}: {len(files)} files, expected {want}")
    files = [rel for group in matched for rel in group]
    result.size += sum((folder / rel).stat().st_size for rel in files)
    if tree.sha256 is None:
        result.notes.append(f"{len(files)} files counted (no public per-file checksums for this layout)")
        return False
    if result.problems:
        return False
    key = f"{entry.name}:{folder.resolve()}"
    fingerprint = _stat_fingerprint(folder, files)
    if not full and _load_stamps().get(key) == fingerprint:
        result.notes.append("tree digest matched earlier (files unchanged since)")
        return True
    hashes = {}
    for rel in files:
        if on_file:
            on_file(rel)
        hashes[rel] = file_digest(folder / rel)
    if tree_digest(hashes) == tree.sha256:
        _save_stamp(key, fingerprint)
    else:
        result.problems.append(_tree_problem(folder, hashes))
    return True


def _tree_problem(folder: Path, hashes: dict[str, str]) -> str:
    sums = _read_sums(folder)
    if sums:
        bad = [rel for rel, digest in hashes.items() if sums.get(rel) not in (None, digest)]
        unknown = [rel for rel in hashes if rel not in sums]
        if bad or unknown:
            parts = []
            if bad:
                parts.append(f"{len(bad)} files differ from SHA256SUMS (e.g. {', '.join(sorted(bad)[:3])})")
            if unknown:
                parts.append(f"{len(unknown)} files not in SHA256SUMS (e.g. {', '.join(sorted(unknown)[:3])})")
            return "tree digest mismatch: " + "; ".join(parts)
    return "tree digest mismatch: some file differs from the catalogued copy (no SHA256SUMS here to say which)"

"""Where a dataset is: the lookup order, the missing-data message, and download as the last resort.

Lookup order for :func:`locate`:

1. an explicit ``--data DIR`` (the dataset folder itself, or a folder holding ``<name>/``);
2. ``$NEURALSIGHT_DATA/<name>`` (or the entry's ``shared_folder``);
3. system copies (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
4. the user cache ``~/.cache/neuralsight/<name>`` (``$NEURALSIGHT_CACHE`` overrides);
5. download into the cache, when the entry has downloads and ``download=True``.

A folder counts only when one of the entry's layouts matches it (an empty or half-copied folder is
skipped). When all fail, :class:`DataError` names the missing files, every place looked, the URL, and the
package or command that provides them.
"""

from __future__ import annotations

import os
from pathlib import Path

from neuralsight.data.catalog.entries import CATALOG
from neuralsight.data.catalog.sources import Dataset
from neuralsight.errors import DataError
from neuralsight.io import cache_dir


def get(name: str) -> Dataset:
    """The catalog entry ``name``; DataError listing the known names otherwise."""
    if name not in CATALOG:
        raise DataError(f"unknown dataset '{name}'", f"known datasets: {', '.join(CATALOG)}")
    return CATALOG[name]


def names_for(task: str) -> list[str]:
    """Catalog names a task trains on, in catalog order (for 'use one of ...' messages)."""
    return [name for name, entry in CATALOG.items() if entry.task == task]


def candidates(name: str, data_dir: Path | str | None = None) -> list[Path]:
    """Every place looked for ``name``, in lookup order."""
    entry = get(name)
    folders = [name] + ([entry.shared_folder] if entry.shared_folder else [])
    out: list[Path] = []
    if data_dir:
        d = Path(data_dir).expanduser()
        out.append(d)
        out.extend(d / f for f in folders)
    env = os.environ.get("NEURALSIGHT_DATA")
    if env:
        out.extend(Path(env).expanduser() / f for f in folders)
    out.extend(Path(p) for p in entry.system_paths)
    out.append(cache_dir(name))
    return out


def find(name: str, data_dir: Path | str | None = None) -> Path | None:
    """The first candidate folder that holds a complete layout of ``name``, or None."""
    entry = get(name)
    for folder in candidates(name, data_dir):
        if folder.is_dir() and entry.matching_layout(folder) is not None:
            return folder
    return None


def fetch_command(name: str) -> str:
    return f"neuralsight data fetch {name}"


def missing_message(name: str, data_dir: Path | str | None = None, download_error: str | None = None) -> str:
    """One line: the files needed, every place looked, the URLs, what went wrong, and how to get it."""
    entry = get(name)
    looked = "; ".join(str(p) for p in candidates(name, data_dir))
    urls = ", ".join(d.url for d in entry.downloads) or "none (no public direct download)"
    need = ", ".join(entry.layouts[0].required)
    msg = f"dataset '{name}' not found: need {need}; looked in: {looked}; download: {urls}"
    if download_error:
        msg += f" (download failed: {download_error})"
    msg += f". To get it: {entry.obtain}; then pass --data DIR or set NEURALSIGHT_DATA"
    return msg


def download_allowed(entry: Dataset, download: bool | None) -> bool:
    """``download=None`` means: when the entry has URLs and ``NEURALSIGHT_OFFLINE`` is not set."""
    if download is None:
        download = not os.environ.get("NEURALSIGHT_OFFLINE")
    return bool(download and entry.downloads)


def locate(name: str, data_dir: Path | str | None = None, download: bool | None = None) -> Path:
    """The folder holding dataset ``name``; downloads into the cache if allowed and possible.

    Raises:
        DataError: :func:`missing_message` (with the download's failure when one was tried).
    """
    found = find(name, data_dir)
    if found is not None:
        return found
    entry = get(name)
    error = None
    if download_allowed(entry, download):
        from neuralsight.data.download import fetch_dataset

        try:
            return fetch_dataset(entry, cache_dir(name))
        except (OSError, DataError) as err:
            error = first_line(err)
    raise DataError(missing_message(name, data_dir, error))


def locate_file(name: str, data_dir: Path | str | None = None, download: bool | None = None) -> Path:
    """The entry's ``main_file`` inside :func:`locate`'s folder (a text corpus, a series CSV)."""
    entry = get(name)
    if not entry.main_file:
        raise DataError(f"dataset '{name}' is a folder, not one file",
                        f"read it with the loader for '{entry.task}' (locate('{name}') gives the folder)")
    return locate(name, data_dir, download) / entry.main_file


def first_line(err: BaseException) -> str:
    text = err.message if isinstance(err, DataError) else str(err)
    return text.splitlines()[0] if text else type(err).__name__

"""The dataset catalog: every dataset's files, checksums, upstream URLs, licence, where to look, loader facts.

The public API (import it from here):

- :func:`get` (an entry), :func:`find` (a folder or None), :func:`locate` (a folder, downloading when
  allowed, else a one-line :class:`DataError`), :func:`locate_file` (the entry's ``main_file``);
- :func:`check` (verify a folder), :func:`ensure_present` (system package or download, for ``make demo``);
- :data:`CATALOG` and the entry types :class:`Dataset`, :class:`Layout`, :class:`Tree`, :class:`Download`.

Modules: ``sources`` (the entry types and loader facts), ``entries`` (the literal), ``lookup`` (lookup order,
messages), ``verify`` (hashing), ``prepare`` (files derived after download), ``ensure`` (getting a copy);
the transfers themselves live in :mod:`neuralsight.data.download`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from neuralsight.data.catalog import verify
from neuralsight.data.catalog.ensure import Host, Presence, ensure_present
from neuralsight.data.catalog.entries import CATALOG
from neuralsight.data.catalog.lookup import (
    candidates,
    fetch_command,
    find,
    get,
    locate,
    locate_file,
    missing_message,
    names_for,
)
from neuralsight.data.catalog.sources import Dataset, Download, Layout, Tree
from neuralsight.data.catalog.verify import CheckResult


def check(dataset: Dataset | str, folder: Path | str, full: bool = True,
          on_file: Callable[[str], None] | None = None) -> CheckResult:
    """Verify ``folder`` as a copy of ``dataset`` (an entry, or its catalog name as the CLI passes it).

    See :func:`neuralsight.data.catalog.verify.check`, which takes the entry.
    """
    return verify.check(get(dataset) if isinstance(dataset, str) else dataset, folder, full, on_file)


__all__ = ["CATALOG", "CheckResult", "Dataset", "Download", "Host", "Layout", "Presence", "Tree", "candidates",
           "check", "ensure_present", "fetch_command", "find", "get", "locate", "locate_file",
           "missing_message", "names_for"]

"""Make a dataset present before a demo or a test run: system package, else the checksummed download.

``make demo`` and ``make test`` must set up everything on a fresh machine. For each dataset they need,
:func:`ensure_present` decides, in this order:

1. a copy is already found (:func:`~neuralsight.data.catalog.lookup.find`): use it;
2. the entry has a Debian package (Fashion-MNIST: ``dataset-fashion-mnist``) and the machine has
   ``apt-get``: as root, install it (``apt-get install -y``; after an ``apt-get update`` when the first
   try fails, as on a fresh container with empty package lists); as another user, keep the exact
   ``sudo apt-get install -y ...`` line as advice and go on;
3. the catalog's checksummed, resumable download into the cache;
4. nothing worked: :class:`DataError` with the missing-data message, led by the ``sudo`` line when there
   is one (the one command that fixes it).

The machine is described by a :class:`Host` so the decision is tested with fakes, without apt or network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.data.catalog.lookup import download_allowed, find, first_line, get, missing_message
from neuralsight.errors import DataError
from neuralsight.io import cache_dir


def _run(command: Sequence[str]) -> tuple[int, str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(list(command), env=env, capture_output=True, text=True, check=False)
    except OSError as err:
        return 127, str(err)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


@dataclass(frozen=True)
class Host:
    """What the machine offers for installing system packages.

    Attributes:
        has_apt: ``apt-get`` is on the PATH.
        is_root: the process may install packages (effective uid 0).
        run: runs a command, returns ``(exit code, last line of its output)``.
    """

    has_apt: bool
    is_root: bool
    run: Callable[[Sequence[str]], tuple[int, str]] = _run

    @classmethod
    def current(cls) -> Host:
        geteuid = getattr(os, "geteuid", None)
        return cls(has_apt=shutil.which("apt-get") is not None, is_root=geteuid is not None and geteuid() == 0)


@dataclass
class Presence:
    """Where a dataset is after :func:`ensure_present`, and how it got there.

    Attributes:
        name: the catalog name.
        folder: the dataset folder.
        how: ``found`` (already there), ``apt`` (installed the system package), ``download`` (fetched).
        commands: the commands that were run, in order (apt-get ...).
        advice: a command the user may run for a system copy (the ``sudo apt-get`` line), or empty.
        notes: what was tried and did not work, one line each.
    """

    name: str
    folder: Path
    how: str
    commands: list[list[str]] = field(default_factory=list)
    advice: str = ""
    notes: list[str] = field(default_factory=list)


def _apt_install(package: str, host: Host, commands: list[list[str]]) -> str | None:
    """Install ``package``; None on success, else the reason."""
    install = ["apt-get", "install", "-y", package]
    for attempt in ([install], [["apt-get", "update"], install]):
        reason = None
        for command in attempt:
            commands.append(command)
            code, last = host.run(command)
            if code != 0:
                reason = f"`{' '.join(command)}` exited {code}" + (f": {last}" if last else "")
                break
        if reason is None:
            return None
    return reason


def ensure_present(name: str, data_dir: Path | str | None = None, download: bool | None = None,
                   host: Host | None = None, progress: bool = True, timeout: float = 30.0) -> Presence:
    """Find dataset ``name``, else install its system package or download it (see the module doc).

    Args:
        name: catalog name.
        data_dir: an explicit folder to look in first (``--data``).
        download: allow the download; None: unless ``NEURALSIGHT_OFFLINE`` is set.
        host: the machine (default :meth:`Host.current`).
        progress: show a download progress bar.
        timeout: seconds a download connection may stay silent.

    Raises:
        DataError: nothing found, installed or downloaded; the message leads with the ``sudo apt-get``
            line when the entry has a package, then names the files, places, URLs and what failed.
    """
    entry = get(name)
    found = find(name, data_dir)
    if found is not None:
        return Presence(name, found, "found")
    host = host or Host.current()
    commands: list[list[str]] = []
    notes: list[str] = []
    advice = ""
    if entry.system_package and host.has_apt:
        if host.is_root:
            failure = _apt_install(entry.system_package, host, commands)
            found = find(name, data_dir)
            if failure is None and found is not None:
                return Presence(name, found, "apt", commands)
            notes.append(failure or f"{entry.system_package} installed but no copy in "
                                    f"{', '.join(entry.system_paths)}")
        else:
            advice = entry.apt_command
    error = None
    if download_allowed(entry, download):
        from neuralsight.data.download import fetch_dataset

        try:
            folder = fetch_dataset(entry, cache_dir(name), progress=progress, timeout=timeout)
            return Presence(name, folder, "download", commands, advice, notes)
        except (OSError, DataError) as err:
            error = first_line(err)
    message = missing_message(name, data_dir, "; ".join(notes + ([error] if error else [])) or None)
    if entry.apt_command:
        lead = f"run `{entry.apt_command}`" if host.has_apt and not host.is_root else \
            f"on Debian or Ubuntu, `{entry.apt_command}` installs it"
        message = f"{lead}; {message}"
    raise DataError(message)

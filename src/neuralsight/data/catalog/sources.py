"""What a catalog entry says: where a dataset's files come from, how a copy is recognised, how a loader reads it.

A :class:`Dataset` holds three kinds of facts:

- provenance: description, licence, homepage, upstream :class:`Download` s, how to get it otherwise
  (``obtain``), the Debian package that installs a system copy;
- how a copy on disk is recognised and verified: one or more accepted :class:`Layout` s (the official
  release, the staged copy in ``shared/datasets``...), each with fixed-file checksums or a :class:`Tree`;
- what a loader needs: the task that trains on it, the main file, class names, mask format and colours,
  the group pattern that keeps one volume / photo / case on one side of a split, and the headline metric.

Adding a dataset is one entry in :mod:`neuralsight.data.catalog.entries`; no loader keeps its own table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Download:
    """One file to fetch.

    Args:
        url: primary URL.
        filename: where it lands, relative to the dataset folder (may contain ``/``); for archives the
            name of the downloaded archive, which is removed after unpacking.
        sha256: expected sha256 (hex) of the downloaded bytes, or None.
        unpack: tar/zip/gz archive to extract into the dataset folder.
        md5: expected md5 (hex), checked too when given (many upstreams publish only md5).
        size: expected size in bytes, when a source states it.
        mirrors: further URLs serving the same bytes, tried in order after ``url``.
        strip: a leading folder inside the archive to drop (``Task04_Hippocampus`` -> its contents).
    """

    url: str
    filename: str
    sha256: str | None = None
    unpack: bool = False
    md5: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    strip: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.mirrors)


@dataclass(frozen=True)
class Tree:
    """A folder tree checked by file counts and one digest over all matched files (see ``verify``)."""

    patterns: tuple[str, ...]           # relative globs, e.g. "images/*.jpg"; dot-files never match
    counts: tuple[int, ...]             # expected number of files per pattern
    sha256: str | None = None           # tree digest; None: counts only (no public checksum known)


@dataclass(frozen=True)
class Layout:
    """One accepted shape of a dataset folder."""

    label: str
    required: tuple[str, ...]                                   # relative paths that must exist
    checksums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> accepted sha256 values
    content_sha256: dict[str, str] = field(default_factory=dict)  # .gz file -> sha256 of its decompressed bytes
    tree: Tree | None = None


@dataclass(frozen=True)
class Dataset:
    """One catalog entry.

    Provenance and lookup:
        name: the catalog name (``--dataset NAME``, the folder name under ``$NEURALSIGHT_DATA``).
        description, used_for, licence, homepage: shown by ``neuralsight data list``.
        layouts: accepted folder shapes, tried in order (the first whose required paths exist is checked).
        downloads: files to fetch into the cache, each with a checksum.
        obtain: how to get it by other means (one line, shown when it is missing).
        system_paths: where a system package installs it.
        system_package: the Debian package that installs ``system_paths[0]`` (see :attr:`apt_command`).
        prepare: name in :data:`neuralsight.data.catalog.prepare.PREPARE` deriving files after download.
        shared_folder: the folder holding it under ``$NEURALSIGHT_DATA`` / ``--data`` when that is not
            ``name`` (both Shakespeare texts live in ``shakespeare/``).

    Loader facts:
        task: the task that trains on it (``classify``, ``textgen``, ``segment``, ``segment3d``, ``forecast``).
        main_file: the one file a loader reads, relative to the dataset folder (a corpus, a CSV).
        class_names: class names in label order (index 0 first).
        palette: ``(r, g, b)`` per class for colour masks (``mask_format = "palette"``).
        mask_format: how mask files encode classes (a :class:`neuralsight.data.images.MaskSpec` format).
        group_pattern: regex over a file stem whose first group names the unit a split keeps on one side
            (a volume, a photo, a case); empty: every file is its own unit.
        split_unit: what one group is, for messages (``volume``, ``photo``, ``case``, ``radiograph``).
        headline_metric: the metric a task headlines for this dataset, as the task's metrics name it without
            the split (``fg_iou``, ``fg_dice``, ``miou``, ``dice``); empty: the task's default.
        merge_foreground: the binary score merges every non-background class against background
            (Oxford-IIIT Pet: pet and border, as segmentation_models_pytorch evaluates it).
    """

    name: str
    description: str
    used_for: str
    licence: str
    layouts: tuple[Layout, ...]
    downloads: tuple[Download, ...] = ()
    obtain: str = ""
    system_paths: tuple[str, ...] = ()
    system_package: str = ""
    homepage: str = ""
    prepare: str | None = None
    shared_folder: str = ""
    task: str = ""
    main_file: str = ""
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    mask_format: str = ""
    group_pattern: str = ""
    split_unit: str = ""
    headline_metric: str = ""
    merge_foreground: bool = False

    @property
    def apt_command(self) -> str:
        """The exact line a user runs to install the system copy (empty when there is no package)."""
        return f"sudo apt-get install -y {self.system_package}" if self.system_package else ""

    def matching_layout(self, folder: Path) -> Layout | None:
        """The first layout whose required paths all exist in ``folder``."""
        folder = Path(folder)
        for layout in self.layouts:
            if all((folder / rel).exists() for rel in layout.required):
                return layout
        return None

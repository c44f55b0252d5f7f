"""The data of the two segmentation tasks: finding, splitting and decoding what ``train segment`` (2D) and
``train segment3d`` read, for training, ``eval``, ``explain`` and the benchmarks.

2D (:func:`load_data`): image/mask pairs split by ``data/images.py`` ``split_segmentation`` (or, for runs of
0.1, ``legacy_split``) and decoded once into uint8 arrays. 3D (:func:`load_split`): every case of a volume folder
read by ``data/volumes.py``, split by case with ``split_cases`` (0.1 runs: ``legacy_split_cases``). Both take
the task's config duck-typed (its ``data`` section for 2D, the whole config for 3D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import ConfigError, DataError
from neuralsight.tasks.segmentation import spread

HIPPOCAMPUS_NAMES = ["background", "anterior", "posterior"]


# ---- 2D -------------------------------------------------------------------------------------------------

@dataclass
class SegData:
    train: object          # data.images.SegArrays
    val: object            # picks the checkpoint
    test: object | None    # scored once at the end (None: a 0.1 run, see the module docstring)
    class_names: list[str]
    val_name: str          # what the validation split is
    notes: str             # how the data were found and split
    split: dict = field(default_factory=dict)  # {"unit", "method", "sizes"} of the three splits


def load_data(cfg, legacy: bool = False, splits: tuple[str, ...] = ("train", "val", "test")) -> SegData:
    """Find, pair, split and decode (cached) the ``splits`` asked for; ``legacy``: the two-way split of 0.1."""
    from neuralsight.data import catalog, images
    from neuralsight.data.splits import check_fractions

    entry = None
    if cfg.dataset == "folder":
        if not cfg.data_dir:
            raise ConfigError("data.dataset = 'folder' needs a folder", "pass --data DIR holding images/ and masks/")
        root = Path(cfg.data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist", "pass --data DIR holding images/ and masks/")
    else:
        root, entry = catalog.locate(cfg.dataset, cfg.data_dir), catalog.get(cfg.dataset)
    pets = images.is_pets_layout(root) and not (root / "masks").is_dir()
    fmt = ("trimap" if cfg.mask_mode == "trimap" else "trimap_binary") if pets else cfg.mask_format
    spec = images.mask_spec(entry if not pets or fmt == "trimap" else None, fmt, cfg.class_names, cfg.palette)
    if pets and fmt == "trimap_binary":
        spec = images.MaskSpec(fmt, list(cfg.class_names) or ["background", "pet"], [])
    if legacy:
        parts = images.legacy_split(root, entry, cfg.group_pattern, cfg.val_fraction, cfg.split_seed)
    else:
        check_fractions(cfg.val_fraction, 0.0 if pets else cfg.test_fraction)
        parts = images.split_segmentation(root, entry, cfg.group_pattern, cfg.val_fraction, cfg.test_fraction,
                                          cfg.split_seed)
    limits = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}
    arrays = {k: images.decode_pairs(spread(parts[k], limits[k]) if limits[k] else parts[k], cfg.image_size, spec,
                                     workers=2) if k in splits else None for k in ("train", "val", "test")}
    names = spec.class_names
    if not names:
        top = int(max(a.masks[a.masks != images.IGNORE].max(initial=0) for a in arrays.values() if a is not None))
        names = ["background"] + [f"class{i}" for i in range(1, max(top, 1) + 1)]
    val_name = "official test split" if legacy and pets else f"validation split by {parts.unit}"
    sizes = {k: len(parts[k]) for k in ("train", "val", "test")}
    return SegData(arrays["train"], arrays["val"], None if legacy else arrays["test"], list(names), val_name,
                   parts.method + (f"; mask mode '{cfg.mask_mode}'" if pets else ""),
                   {"unit": parts.unit, "method": parts.method, "sizes": sizes})


# ---- 3D -------------------------------------------------------------------------------------------------

def volume_options(cfg):
    from neuralsight.data.volumes import VolumeOptions

    return VolumeOptions.of(cfg.data)


def load_split(cfg, legacy: bool = False):
    """``(splits, class_names, folder)``: ``splits`` holds the cases of train / val / test (``legacy``: the
    two-way split of 0.1, no test part)."""
    from neuralsight.data import catalog
    from neuralsight.data.splits import Splits, check_fractions
    from neuralsight.data.volumes import label_names, legacy_split_cases, load_cases, split_cases

    d = cfg.data
    if d.dataset == "folder" and not d.data_dir:
        raise DataError("data.dataset = 'folder' needs a folder", "pass --data DIR (imagesTr/ + labelsTr/)")
    folder = Path(d.data_dir) if d.dataset == "folder" else catalog.locate(d.dataset, d.data_dir)
    cases = load_cases(folder, volume_options(cfg), limit=d.limit or None)
    if len(cases) < 2:
        raise DataError(f"{folder} holds {len(cases)} labelled case(s)", "need at least 2 (train and validation)")
    case_names = [c.name for c in cases]
    if legacy:
        parts = legacy_split_cases(case_names, d.val_fraction, d.split_seed)
    else:
        check_fractions(d.val_fraction, d.test_fraction)
        parts = split_cases(case_names, d.val_fraction, d.test_fraction if len(cases) > 2 else 0.0, d.split_seed)
    by_name = {c.name: c for c in cases}
    num_classes = max(2, 1 + max(int(c.label.max()) for c in cases))
    names = list(cfg.data.class_names)
    if not names:
        names = label_names(folder, num_classes)
        # The shared copy has no dataset.json; its label names belong in the catalog entry.
        if cfg.data.dataset == "msd-hippocampus" and not (folder / "dataset.json").is_file() and num_classes == 3:
            names = list(HIPPOCAMPUS_NAMES)
    if len(names) < num_classes:
        raise ConfigError(f"data.class_names has {len(names)} names but the labels hold {num_classes} classes")
    return Splits(*([by_name[n] for n in parts[k]] for k in ("train", "val", "test")), "case",
                  parts.method), names[:num_classes], folder

"""Image + mask datasets for 2D segmentation: pairing, mask decoding, splits, and a uint8 disk cache.

Layouts read:

- Oxford-IIIT Pet, official (``images/``, ``annotations/trimaps/``, ``annotations/{trainval,test}.txt``)
  and the shared subset (``images/``, ``trimaps/``, ``trainval.txt``, ``test.txt``). Trimap values are
  1 = pet, 2 = background, 3 = border; mode ``trimap`` maps them to classes background/pet/border,
  mode ``binary`` to background vs pet (pet + border), as segmentation_models_pytorch evaluates it.
  :func:`pets_splits`: the official test list is test; validation is carved from trainval by breed.
- Any ``images/`` + ``masks/`` pair of folders, matched by file stem. Masks are binary (0/255),
  class indices (grey or palette-mode PNG), or RGB colours with a class table (``palette``).
  :func:`split_pairs`: train / val / test by group (the catalog's ``group_pattern``: volume, photo, case).

:func:`split_segmentation` does either for a folder and its catalog entry; :func:`mask_spec` merges the
entry's mask facts with a config's overrides. Both are what a task calls.

Every image is decoded once, resized so its longer side equals ``image_size`` (aspect kept, Lanczos for
images, nearest for masks) and padded to a square; padded mask pixels hold :data:`IGNORE` so losses and
metrics skip them. The arrays are cached as ``.npz`` under ``$NEURALSIGHT_CACHE`` (default
``~/.cache/neuralsight``), keyed by the file list, sizes, mtimes and every decoding option.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralsight.data.catalog import Dataset
from neuralsight.data.splits import SEED, TEST_FRACTION, VAL_FRACTION, Splits, split_items, stratified_holdout
from neuralsight.errors import DataError
from neuralsight.io import cache_dir

IGNORE = 255
# Every image file any loader accepts (segmentation inputs, class folders, predict inputs).
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
MASK_EXTS = (".png", ".bmp", ".gif", ".tif", ".tiff")

@dataclass
class Pair:
    """One image and its mask file.

    ``group`` ties together files that must stay on one side of a split (a volume, a photo);
    ``stratum`` is what a stratified split keeps in proportion (Oxford-IIIT Pet: the breed's class id).
    """

    stem: str
    image: Path
    mask: Path | None
    group: str = ""
    stratum: str = ""


@dataclass
class SegArrays:
    """Decoded, resized, padded arrays of one split.

    ``images``: uint8 ``(N, S, S, 3)``; ``masks``: uint8 ``(N, S, S)`` with class indices and
    :data:`IGNORE` on padding; ``sizes``: original ``(height, width)`` per item.
    """

    images: np.ndarray
    masks: np.ndarray
    stems: list[str]
    sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.stems)


@dataclass
class MaskSpec:
    """How mask files become class indices."""

    format: str = "auto"                    # auto | binary | index | palette | trimap | trimap_binary
    class_names: list[str] = field(default_factory=list)
    palette: list[list[int]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- decode
IMAGE_MODES = ("RGB", "L", None)


def open_image(path: Path | str, mode: str | None = "RGB", draft_size: int | None = None) -> np.ndarray:
    """Decode any Pillow-readable image file fully into a uint8 array, whatever its extension says.

    Oxford-IIIT Pet has files named ``.jpg`` that are really GIF or PNG; Pillow sniffs the content. The whole
    file is decoded here, so a truncated file fails here and not later.

    Args:
        path: the file.
        mode: ``"RGB"`` -> ``(H, W, 3)``; ``"L"`` -> ``(H, W)`` (ITU-R 601 luma); ``None`` -> as stored, with
            transparency kept: ``(H, W)`` for grey and bilevel files, ``(H, W, 4)`` for any file with an
            alpha channel or a transparent palette entry, ``(H, W, 3)`` otherwise.
        draft_size: when the image will be shrunk to about this many pixels anyway, JPEG decoding may use
            DCT scaling (much faster); the result is then smaller than the file.

    Raises:
        DataError: naming the file: missing, not an image Pillow can read, or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in IMAGE_MODES:
        raise ValueError(f"mode must be one of {IMAGE_MODES}, got {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path}: no such file", "check the path")
    try:
        with Image.open(path) as im:
            if draft_size and im.format == "JPEG":
                im.draft(mode or im.mode, (draft_size, draft_size))
            im.load()
            if mode is None:
                transparent = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or \
                    (im.mode == "P" and "transparency" in im.info)
                mode = "RGBA" if transparent else "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            return np.asarray(im if im.mode == mode else im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = "not an image file Pillow can read" if isinstance(err, UnidentifiedImageError) else \
            f"corrupt image ({err})"
        raise DataError(f"cannot decode image {path}: {reason}", "check the file is a readable image") from None


def original_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def read_mask(path: Path, spec: MaskSpec) -> np.ndarray:
    """Decode a mask file into class indices uint8 ``(H, W)`` following ``spec``.

    Raises:
        DataError: naming the file, for values or colours the spec does not know.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode == "P" and spec.format != "palette":
                arr = np.asarray(im)                          # palette-mode PNG stores indices already
                fmt = "index" if spec.format == "auto" else spec.format
            elif mode in ("RGB", "RGBA") or spec.format == "palette":
                arr = np.asarray(im.convert("RGB"))
                fmt = spec.format
                if fmt == "auto":
                    grey = (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
                    fmt = "palette" if not grey else "auto"
                    if grey:
                        arr = arr[..., 0]
            else:
                arr = np.asarray(im.convert("L") if mode not in ("L", "I", "I;16") else im)
                fmt = spec.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot decode mask {path}: {err}", "check the file is a readable PNG") from None

    if fmt == "palette":
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if not spec.palette:
            raise DataError(f"mask {path} is a colour mask but no colour table was given",
                            "set data.palette = [[r, g, b], ...] and data.class_names in the config")
        out = np.full(arr.shape[:2], IGNORE, dtype=np.uint8)
        for idx, colour in enumerate(spec.palette):
            out[(arr == np.asarray(colour, dtype=arr.dtype)).all(-1)] = idx
        unknown = out == IGNORE
        if unknown.any():
            ys, xs = np.nonzero(unknown)
            colour = tuple(int(v) for v in arr[ys[0], xs[0]])
            raise DataError(f"mask {path} has colour {colour} at (row {ys[0]}, col {xs[0]}) "
                            f"({int(unknown.sum())} pixels) that is not in data.palette {spec.palette}",
                            "add the colour to data.palette/data.class_names or fix the mask")
        return out
    if arr.ndim == 3:
        arr = arr[..., 0]
    values = np.unique(arr)
    if fmt in ("trimap", "trimap_binary"):
        bad = sorted(set(values.tolist()) - {1, 2, 3})
        if bad:
            raise DataError(f"trimap {path} has values {bad[:5]}; expected only 1 (pet), 2 (background), 3 (border)")
        lut = np.array([0, 1, 0, 2], dtype=np.uint8) if fmt == "trimap" else np.array([0, 1, 0, 1], np.uint8)
        return lut[arr]
    if fmt == "auto":
        fmt = "binary" if set(values.tolist()) <= {0, 255} and 255 in values else "index"
    if fmt == "binary":
        bad = sorted(set(values.tolist()) - {0, 1, 255})
        if bad:
            raise DataError(f"binary mask {path} has values {bad[:5]}; expected 0 and 255 (or 0 and 1)",
                            "set data.mask_format = \"index\" if the values are class indices")
        return (arr > 0).astype(np.uint8)
    if fmt == "index":
        n = len(spec.class_names)
        if n and values.max() >= n:
            raise DataError(f"mask {path} has class index {int(values.max())} but data.class_names lists {n} classes",
                            "add the class to data.class_names or fix the mask")
        if values.max() >= IGNORE:
            raise DataError(f"mask {path} has value {int(values.max())}; class indices must be below {IGNORE}")
        return arr.astype(np.uint8)
    raise DataError(f"unknown mask format '{spec.format}'", "use auto, binary, index or palette")


def fit_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Size that makes the longer side ``size`` and keeps the aspect ratio."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_pad(image: np.ndarray, mask: np.ndarray | None, size: int,
               full: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize keeping the aspect ratio (longer side = ``size``), then pad bottom/right to ``size x size``.

    ``full`` is the original ``(height, width)`` when ``image`` was decoded at a reduced size.
    """
    from PIL import Image

    h, w = fit_size(*(full or image.shape[:2]), size)
    img = np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0))
    out_img = np.zeros((size, size, 3), dtype=np.uint8)
    out_img[:h, :w] = img
    out_mask = None
    if mask is not None:
        m = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST))
        out_mask = np.full((size, size), IGNORE, dtype=np.uint8)
        out_mask[:h, :w] = m
    return out_img, out_mask


# ----------------------------------------------------------------------------------------------- layouts
def _files_by_stem(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            if p.stem in out:
                raise DataError(f"two files share the stem '{p.stem}' in {folder}: {out[p.stem].name} and {p.name}",
                                "rename one so images and masks pair unambiguously")
            out[p.stem] = p
    return out


def is_pets_layout(root: Path) -> bool:
    return (root / "images").is_dir() and ((root / "trimaps").is_dir() or (root / "annotations" / "trimaps").is_dir())


def pets_pairs(root: Path) -> dict[str, list[Pair]]:
    """Oxford-IIIT Pet pairs by official split: ``{"trainval": [...], "test": [...]}``.

    Works for the official layout and for the shared subset (lists and trimaps at the top level).
    """
    ann = root / "annotations" if (root / "annotations" / "trimaps").is_dir() else root
    trimaps = ann / "trimaps"
    out: dict[str, list[Pair]] = {}
    for split in ("trainval", "test"):
        listing = ann / f"{split}.txt"
        if not listing.is_file():
            raise DataError(f"Oxford-IIIT Pet split list {listing} is missing",
                            "extract annotations.tar.gz next to images/ (it holds trainval.txt and test.txt)")
        pairs = []
        for line in listing.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            stem = fields[0]
            # Line format "Image CLASS-ID SPECIES BREED-ID": CLASS-ID (1..37) is the breed.
            breed = fields[1] if len(fields) > 1 else stem.rsplit("_", 1)[0]
            image = root / "images" / f"{stem}.jpg"
            mask = trimaps / f"{stem}.png"
            if not image.is_file():
                raise DataError(f"{listing} lists '{stem}' but {image} does not exist",
                                "re-extract images.tar.gz or remove the line")
            if not mask.is_file():
                raise DataError(f"image {image} has no trimap {mask}", "re-extract annotations.tar.gz")
            pairs.append(Pair(stem, image, mask, stem, breed))
        out[split] = pairs
    return out


def folder_pairs(root: Path, group_pattern: str = "", require_masks: bool = True) -> list[Pair]:
    """Pairs of ``root/images/<stem>.*`` and ``root/masks/<stem>.*``.

    Raises:
        DataError: for a missing folder, or an image without a mask (or a mask without an image),
            naming the first such file and how many there are.
    """
    images_dir, masks_dir = root / "images", root / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DataError(f"{d} does not exist", "a segmentation folder needs images/ and masks/ with matching "
                                                   "file names (stems)")
    images = _files_by_stem(images_dir, IMAGE_EXTS)
    masks = _files_by_stem(masks_dir, MASK_EXTS + (".jpg", ".jpeg"))
    if not images:
        raise DataError(f"no images found in {images_dir}", f"expected files ending in {', '.join(IMAGE_EXTS)}")
    lonely = sorted(set(images) - set(masks))
    if lonely and require_masks:
        raise DataError(f"image {images[lonely[0]]} has no mask in {masks_dir} (expected {lonely[0]}.png)"
                        + (f"; {len(lonely) - 1} more images lack masks" if len(lonely) > 1 else ""),
                        "add the masks or remove the images")
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DataError(f"mask {masks[orphans[0]]} has no image in {images_dir}"
                        + (f"; {len(orphans) - 1} more masks lack images" if len(orphans) > 1 else ""),
                        "add the images or remove the masks")
    regex = re.compile(group_pattern) if group_pattern else None
    pairs = []
    for stem, path in images.items():
        group = stem
        if regex is not None:
            m = regex.search(stem)
            if m is None:
                raise DataError(f"file name '{path.name}' does not match data.group_pattern '{group_pattern}'",
                                "fix the pattern so its first group captures the source id (volume, photo)")
            group = m.group(1) if m.groups() else m.group(0)
        pairs.append(Pair(stem, path, masks.get(stem), group))
    return pairs


def pets_splits(root: Path, val_fraction: float = VAL_FRACTION, seed: int = SEED) -> Splits[Pair]:
    """Oxford-IIIT Pet in three parts: the official ``test.txt`` is test; validation is carved from
    ``trainval.txt``, seeded and stratified by breed (:func:`~neuralsight.data.splits.stratified_holdout`:
    ``round(val_fraction * len(trainval))`` images, each breed in proportion); the rest trains.

    Defaults: ``val_fraction = 0.15``, ``seed = 0``. Works for the official layout and the shared subset.
    """
    official = pets_pairs(root)
    train, val = stratified_holdout(official["trainval"], lambda p: p.stratum, val_fraction, seed)
    method = (f"Oxford-IIIT Pet: test = the official test list ({len(official['test'])} images); val = "
              f"{len(val)} of the {len(official['trainval'])} official trainval images, stratified by breed "
              f"(fraction {val_fraction:g}, seed {seed}); train = the other {len(train)}")
    return Splits(train, val, official["test"], "image", method)


def split_pairs(pairs: Sequence[Pair], val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
                seed: int = SEED, unit: str = "group") -> Splits[Pair]:
    """Train / val / test with every group (``Pair.group``: a volume, photo, case) wholly on one side.

    See :func:`neuralsight.data.splits.split_groups`: seeded shuffle of the sorted group names, fractions
    of the groups (at least one each). Defaults: ``val_fraction = 0.15``, ``test_fraction = 0.15``, ``seed = 0``.
    """
    return split_items(list(pairs), lambda p: p.group, val_fraction, test_fraction, seed, unit)


def legacy_split(root: Path, entry: Dataset | None, group_pattern: str, val_fraction: float,
                 seed: int = SEED) -> Splits[Pair]:
    """The two-way split neuralsight 0.1 trained on (its runs keep it): Oxford-IIIT Pet trains on trainval and
    validates on the official test list; folders split by group into train and val, with no test part."""
    root = Path(root)
    if is_pets_layout(root) and not (root / "masks").is_dir():
        official = pets_pairs(root)
        return Splits(official["trainval"], official["test"], [], "image", f"Oxford-IIIT Pet ({root}) as 0.1 split "
                      "it: train = the official trainval list, val = the official test list, no test split")
    pattern = group_pattern or (entry.group_pattern if entry else "")
    parts = split_pairs(folder_pairs(root, pattern), val_fraction, 0.0, seed)
    return Splits(parts.train, parts.val, [], parts.unit, f"{root} as 0.1 split it (no test split): {parts.method}")


def split_segmentation(root: Path, entry: Dataset | None = None, group_pattern: str = "",
                       val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
                       seed: int = SEED) -> Splits[Pair]:
    """The three splits of a 2D segmentation folder.

    Oxford-IIIT Pet layouts: :func:`pets_splits` (``test_fraction`` unused: the official test list is test).
    Image/mask folders: :func:`folder_pairs` grouped by ``group_pattern`` (else the entry's), then
    :func:`split_pairs` by group. Defaults: ``val_fraction = 0.15``, ``test_fraction = 0.15``, ``seed = 0``.

    Args:
        root: the dataset folder (``locate(name)``, or a user's ``--data DIR``).
        entry: its catalog entry, or None for a user's folder.
        group_pattern: overrides the entry's pattern (a user's folder names its own).
    """
    root = Path(root)
    if is_pets_layout(root) and not (root / "masks").is_dir():
        return pets_splits(root, val_fraction, seed)
    pattern = group_pattern or (entry.group_pattern if entry else "")
    unit = "file"
    if pattern:
        unit = entry.split_unit if entry and entry.split_unit and not group_pattern else "group"
    pairs = folder_pairs(root, pattern)
    parts = split_pairs(pairs, val_fraction, test_fraction, seed, unit)
    grouping = f"group = first match of '{pattern}' in the file name" if pattern else "every file its own group"
    return Splits(parts.train, parts.val, parts.test, unit,
                  f"{root}: {len(pairs)} image/mask pairs ({grouping}); {parts.method}")


def mask_spec(entry: Dataset | None, mask_format: str = "auto", class_names: Sequence[str] = (),
              palette: Sequence[Sequence[int]] = ()) -> MaskSpec:
    """How masks decode: the config's values where given, else the catalog entry's.

    ``trimap_binary`` (Oxford-IIIT Pet, pet + border against background) keeps the first two class names.
    """
    fmt = mask_format if mask_format != "auto" else (entry.mask_format if entry and entry.mask_format else "auto")
    names = list(class_names) or list(entry.class_names if entry else ())
    if fmt == "trimap_binary" and not class_names:
        names = names[:2]
    colours = [list(c) for c in (palette or (entry.palette if entry else ()))]
    return MaskSpec(fmt, names, colours)


# ----------------------------------------------------------------------------------------------- cache


def _fingerprint(pairs: list[Pair], size: int, spec: MaskSpec) -> str:
    h = hashlib.sha1()
    h.update(json.dumps({"size": size, "format": spec.format, "palette": spec.palette, "v": 1}).encode())
    for p in pairs:
        for f in (p.image, p.mask):
            if f is None:
                continue
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def decode_pairs(pairs: list[Pair], size: int, spec: MaskSpec, cache: bool = True, workers: int = 0) -> SegArrays:
    """Decode, resize and pad ``pairs``; read/write the on-disk uint8 cache keyed by files and size.

    Raises:
        DataError: a file that cannot be decoded, or a mask whose size differs from its image.
    """
    key = _fingerprint(pairs, size, spec)
    path = cache_dir("seg-cache") / f"{size}px-{key}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                return SegArrays(z["images"], z["masks"], [p.stem for p in pairs],
                                 [tuple(s) for s in z["sizes"].tolist()])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt below
    n = len(pairs)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    masks = np.full((n, size, size), IGNORE, dtype=np.uint8)
    sizes = []

    def one(i: int):
        p = pairs[i]
        img = open_image(p.image, "RGB", size)
        full = original_size(p.image)
        mask = read_mask(p.mask, spec) if p.mask is not None else None
        if mask is not None and mask.shape != full:
            raise DataError(f"mask {p.mask} is {mask.shape[1]}x{mask.shape[0]} but image {p.image} is "
                            f"{full[1]}x{full[0]} (width x height)", "masks must have their image's pixel size")
        im, mk = resize_pad(img, mask, size, full)
        images[i] = im
        if mk is not None:
            masks[i] = mk
        return full

    if workers > 1 and n > 32:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            sizes = list(pool.map(one, range(n)))
    else:
        sizes = [one(i) for i in range(n)]
    if cache:
        try:
            from neuralsight.io import atomic_path

            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, images=images, masks=masks, sizes=np.asarray(sizes, dtype=np.int64).reshape(-1, 2))
        except OSError:
            pass  # a read-only cache only costs speed
    return SegArrays(images, masks, [p.stem for p in pairs], sizes)

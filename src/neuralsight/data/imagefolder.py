"""Image classification data: an ImageFolder layout (one sub-folder per class) and image preprocessing.

Layouts accepted for ``--dataset folder --data DIR``:

- ``DIR/train/<class>/*.png`` and ``DIR/test/<class>/*.png`` (an explicit test split), or
- ``DIR/<class>/*.png`` (a seeded test split is held out, ``test_fraction`` of each class).

Images are decoded once, fitted to ``image_size`` (see :func:`preprocess`) and cached as uint8 arrays
(``~/.cache/neuralsight/imagefolder/<hash>.npz``); later runs load the cache in milliseconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from neuralsight.data import images
from neuralsight.data.images import IMAGE_EXTS
from neuralsight.errors import DataError
from neuralsight.io import cache_dir


def open_image(path: Path):
    """Transitional: the file as a PIL image, for tasks/classify.py and commands/classify.py until they call
    :func:`neuralsight.data.images.open_image` (``mode=None`` for :func:`preprocess`, ``mode="L"`` for a
    grey filter input). Decoded by that one function; remove with those callers.
    """
    from PIL import Image

    return Image.fromarray(images.open_image(path, mode=None))


TRIM_TOLERANCE = 12  # grey levels (of 255): JPEG noise on a white backdrop stays within it


def content_box(arr, background, tolerance: float = TRIM_TOLERANCE) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the pixels farther than ``tolerance`` from ``background``.

    ``arr`` is ``(H, W)`` or ``(H, W, C)``; the whole image when no pixel stands out (a blank image).
    """
    import numpy as np

    diff = np.abs(arr.astype(np.float32) - background)
    mask = diff.max(axis=-1) > tolerance if diff.ndim == 3 else diff > tolerance
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return 0, 0, arr.shape[1], arr.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def trims_margins(dataset: str) -> bool:
    """Whether ``predict`` cuts an image's border-colour margins for a run trained on ``dataset``.

    Fashion-MNIST's images were cut to the item by Zalando's conversion, so a photo is trimmed the same way;
    an image-folder run trained on :func:`~neuralsight.data.imagefolder.preprocess`'s untrimmed output.
    """
    return dataset != "folder"


def recorded_trim(meta: dict) -> bool:
    """The trim decision a run recorded in ``classes.json``; runs written before it was recorded predicted
    untrimmed, and still do, so a saved run keeps giving the answers it gave."""
    return bool((meta.get("preprocess") or {}).get("trim_margins", False))


def preprocess(image, image_size: tuple[int, int], channels: int, invert: str = "no", trim: bool = False):
    """Fit one decoded image to the model's input, as documented in the README.

    ``image`` is what :func:`neuralsight.data.images.open_image` returns with ``mode=None``: uint8
    ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (a PIL image is accepted too).

    1. Convert to grey (``L``, ITU-R 601 luma) when ``channels == 1``, else to ``RGB`` (alpha is composited
       on the border colour).
    2. ``invert="auto"``: Fashion-MNIST shows light clothes on a black background; when the image border is
       brighter than its mean (a product photo on white), invert it. ``"yes"``/``"no"`` force it.
    3. ``trim=True`` (``predict`` on a Fashion-MNIST run, whose training images were not made by this
       function; the run records the choice, see :func:`recorded_trim`): cut the margins that stay within
       ``TRIM_TOLERANCE`` grey levels of the border colour, the first step of Zalando's conversion that
       built Fashion-MNIST (its items touch the frame), so an item photographed with a wide margin fills
       the frame as the training images do. An image without such margins is kept whole. Image-folder
       runs train on this function's output untrimmed and predict so.
    4. Pad to a square with the border colour (keeps the aspect ratio), then resize to ``image_size`` with
       a Lanczos (anti-aliased) filter.

    Returns:
        ``numpy.ndarray`` uint8 ``(channels, H, W)``.
    """
    import numpy as np
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)          # (H, W) -> L, (H, W, 3) -> RGB, (H, W, 4) -> RGBA
    mode = "L" if channels == 1 else "RGB"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if invert == "no" else (255, 255, 255, 255))
        image = Image.alpha_composite(bg, rgba)
    img = image.convert(mode)
    arr = np.asarray(img, dtype=np.float32)
    border = np.concatenate([arr[0].ravel(), arr[-1].ravel(), arr[:, 0].ravel(), arr[:, -1].ravel()])
    if invert == "yes" or (invert == "auto" and border.mean() > arr.mean()):
        img = ImageOps.invert(img)
        arr = np.asarray(img, dtype=np.float32)
        border = 255 - border
    fill = int(round(float(np.median(border)))) if mode == "L" else tuple(
        int(v) for v in np.median(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]), axis=0))
    if trim:
        img = img.crop(content_box(arr, np.asarray(fill, dtype=np.float32)))
    w, h = img.size
    side = max(w, h)
    square = Image.new(mode, (side, side), fill)
    square.paste(img, ((side - w) // 2, (side - h) // 2))
    out = square.resize((image_size[1], image_size[0]), Image.Resampling.LANCZOS)
    arr = np.asarray(out, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _scan(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items = []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).rglob("*")):
            if f.suffix.lower() in IMAGE_EXTS and f.is_file():
                items.append((f, ci))
    return classes, items




def _decode_all(items, image_size, channels, warn):
    import numpy as np

    arrays, labels, bad = [], [], []
    for path, label in items:
        try:
            arrays.append(preprocess(images.open_image(path, mode=None), image_size, channels))
            labels.append(label)
        except DataError as err:
            bad.append(str(err))
    if bad and warn:
        warn(f"skipped {len(bad)} unreadable image(s), first: {bad[0]}")
    if not arrays:
        return np.zeros((0, channels, *image_size), np.uint8), np.zeros((0,), np.int64)
    return np.stack(arrays), np.asarray(labels, dtype=np.int64)


def load_image_folder(root: Path | str, image_size: tuple[int, int] = (28, 28), channels: int = 1,
                      test_fraction: float = 0.15, seed: int = 0, warn=print):
    """Load an ImageFolder dataset as uint8 arrays.

    Returns:
        ``(classes, (x_train, y_train), (x_test, y_test))`` with ``x`` uint8 ``(N, channels, H, W)``.

    Raises:
        DataError: no class folders, or no readable images.
    """
    import numpy as np

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist", "pass --data DIR with one sub-folder per class")
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split_dirs else root
    classes, items = _scan(train_root)
    test_items: list = []
    if split_dirs:
        test_classes, test_items = _scan(root / "test")
        index = {c: i for i, c in enumerate(classes)}
        missing = sorted(set(test_classes) - set(classes))
        if missing:
            raise DataError(f"{root}/test has classes {missing} that {root}/train lacks")
        test_items = [(p, index[test_classes[c]]) for p, c in test_items]
    if len(classes) < 2 or not items:
        raise DataError(f"{train_root} needs one sub-folder of images per class (found {len(classes)} class "
                        f"folder(s), {len(items)} image(s))", "layout: DIR/<class>/<image>.png")
    key = hashlib.sha256(repr((str(train_root.resolve()), image_size, channels, split_dirs,
                               [(str(p), p.stat().st_mtime_ns, c) for p, c in items + test_items])).encode())
    cache = cache_dir("imagefolder") / f"{key.hexdigest()[:20]}.npz"
    if cache.is_file():
        try:
            z = np.load(cache)
            return classes, (z["xtr"], z["ytr"]), (z["xte"], z["yte"])
        except (OSError, ValueError, KeyError):
            pass  # a broken cache is rebuilt below
    if not split_dirs:
        rng = np.random.default_rng(seed)
        train_items = []
        for ci in range(len(classes)):
            own = [it for it in items if it[1] == ci]
            order = rng.permutation(len(own))
            n_test = int(round(len(own) * test_fraction)) if len(own) > 1 else 0
            test_items += [own[i] for i in order[:n_test]]
            train_items += [own[i] for i in order[n_test:]]
        items = train_items
    xtr, ytr = _decode_all(items, image_size, channels, warn)
    xte, yte = _decode_all(test_items, image_size, channels, warn)
    if len(xtr) == 0:
        raise DataError(f"no readable images under {train_root}")
    try:
        from neuralsight.io import atomic_path

        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, xtr=xtr, ytr=ytr, xte=xte, yte=yte)
    except OSError:
        pass  # caching is an optimisation; a read-only home still works
    return classes, (xtr, ytr), (xte, yte)

"""Image-classification data as uint8 tensors on the device: Fashion-MNIST (IDX files) or an image folder per
class, with a seeded validation split carved from the training images (the test images stay untouched)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neuralsight.errors import ConfigError


@dataclass
class Split:
    x: object          # uint8 (N, C, H, W) on the device
    y: object          # int64 (N,) on the device


@dataclass
class Data:
    classes: list[str]
    train: Split
    val: Split
    test: Split
    source: str


def load_classification(dataset: str, data_dir: str | Path | None, device, val_size: int = 5000,
                        image_size: int = 28, channels: int = 0, test_fraction: float = 0.15,
                        train_limit: int = 0) -> Data:
    """Load ``dataset`` (``fashion-mnist`` or ``folder``) on ``device`` with a validation split of ``val_size``
    training images (at most a fifth; the split is seeded by 0, so it does not move with the training seed).

    ``channels`` 0 means 1 for Fashion-MNIST and 3 for folders; ``image_size`` and ``test_fraction`` apply to
    folders (a folder without train/test sub-folders holds out ``test_fraction`` per class).
    """
    import numpy as np
    import torch

    if dataset == "fashion-mnist":
        from neuralsight.data.catalog import get, locate
        from neuralsight.data.idx import load_mnist_split

        folder = locate("fashion-mnist", data_dir)
        xtr, ytr = load_mnist_split(folder, "train")
        xte, yte = load_mnist_split(folder, "test")
        xtr, xte = xtr[:, None], xte[:, None]  # (N, 1, 28, 28)
        if channels == 3:
            xtr, xte = np.repeat(xtr, 3, 1), np.repeat(xte, 3, 1)
        classes, source = list(get("fashion-mnist").class_names), str(folder)
    elif dataset == "folder":
        if not data_dir:
            raise ConfigError("data.dataset = 'folder' needs a folder", "pass --data DIR (one sub-folder per class)")
        from neuralsight.data.imagefolder import load_image_folder

        classes, (xtr, ytr), (xte, yte) = load_image_folder(data_dir, (image_size, image_size), channels or 3,
                                                            test_fraction)
        source = str(data_dir)
    else:
        raise ConfigError(f"data.dataset = '{dataset}' is not an image-classification dataset",
                          "use fashion-mnist, or folder with --data DIR")
    if train_limit:
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    order = np.random.default_rng(0).permutation(len(xtr))
    n_val = min(val_size, len(xtr) // 5) if len(xtr) > 1 else 0
    val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    def split(x, y) -> Split:
        return Split(torch.from_numpy(np.array(x, dtype=np.uint8, order="C")).to(device),
                     torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device))

    return Data(classes, split(xtr[tr_idx], ytr[tr_idx]), split(xtr[val_idx], ytr[val_idx]), split(xte, yte), source)

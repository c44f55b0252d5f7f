"""The lecture's inputs for ``neuralsight filters``: a grey image (a file or a Fashion-MNIST test image) and a
1D signal (a CSV column, or a synthetic sine with a step edge)."""

from __future__ import annotations

from pathlib import Path

from neuralsight.errors import DataError, UserError


def load_gray(image: Path | None, dataset: str | None, index: int, data_dir: Path | None):
    """A float (H, W) image in [0, 1] and a label for titles."""
    import numpy as np
    import torch

    if image is not None and dataset is not None:
        raise UserError("give an IMAGE or --dataset, not both")
    if image is not None:
        from neuralsight.data.images import open_image

        arr = np.asarray(open_image(image, mode="L"), dtype=np.float32) / 255
        return torch.from_numpy(arr), Path(image).name
    if dataset is not None:
        if dataset != "fashion-mnist":
            raise UserError(f"--dataset {dataset} is not an image dataset for filters", "use --dataset fashion-mnist")
        from neuralsight.data.catalog import get, locate
        from neuralsight.data.idx import load_mnist_split

        x, y = load_mnist_split(locate("fashion-mnist", data_dir), "test")
        classes = get("fashion-mnist").class_names
        if not 0 <= index < len(x):
            raise UserError(f"--index {index} is outside the Fashion-MNIST test set (0..{len(x) - 1})")
        return torch.from_numpy(x[index].astype(np.float32) / 255), f"fashion-mnist test #{index} ({classes[y[index]]})"
    raise UserError("nothing to filter", "give an IMAGE file, --dataset fashion-mnist --index N, or --signal FILE.csv")


def read_signal(spec: str):
    """A 1D float tensor from ``FILE.csv[:column]`` (name or 0-based index) or ``synthetic``."""
    import csv
    import math

    import torch

    if spec == "synthetic":
        g = torch.Generator().manual_seed(0)
        t = torch.linspace(0, 1, 400)
        clean = torch.sin(2 * math.pi * 3 * t) + (t > 0.5).float() * 1.5  # a sine with a step edge
        return clean + 0.3 * torch.randn(400, generator=g), "synthetic: sine + step at t=0.5 + noise (sigma 0.3)"
    path_text, column = spec, None
    if ":" in spec and not Path(spec).is_file():
        path_text, column = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise DataError(f"signal file {path} does not exist", "give FILE.csv[:column] or --signal synthetic")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8", errors="replace").splitlines()))
    except csv.Error as err:
        raise DataError(f"{path} is not a CSV file: {err}") from None
    rows = [r for r in rows if r]
    if not rows:
        raise DataError(f"{path} is empty")

    def is_num(v: str) -> bool:
        try:
            float(v)
            return True
        except ValueError:
            return False

    header = None if all(is_num(v) for v in rows[0] if v.strip()) else rows[0]
    body = rows[1:] if header else rows
    if column is None:
        col = next((i for i in range(len(body[0])) if body and all(is_num(r[i]) for r in body[:20] if i < len(r))), None)
        if col is None:
            raise DataError(f"{path} has no numeric column", "name one: FILE.csv:column")
    elif column.isdigit():
        col = int(column)
    elif header and column in header:
        col = header.index(column)
    else:
        raise DataError(f"{path} has no column '{column}'", f"columns: {', '.join(header or [])}")
    values = []
    for r in body:
        if col < len(r) and is_num(r[col]):
            values.append(float(r[col]))
    if len(values) < 3:
        raise DataError(f"{path} column {column or col} has fewer than 3 numbers")
    name = header[col] if header and col < len(header) else f"column {col}"
    return torch.tensor(values), f"{path.name}: {name}"

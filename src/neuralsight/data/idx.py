"""Reader for the IDX format of MNIST and Fashion-MNIST (``*-idx3-ubyte.gz`` / ``*-idx1-ubyte.gz``).

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``0x00 0x00 TYPE NDIM``,
then ``NDIM`` big-endian uint32 dimension sizes, then the data in C order. Files may be gzip-compressed.
Every way a file can be wrong (not gzip, cut short, wrong magic, extra bytes) raises a :class:`DataError`
naming the file, what was expected and how to get a good copy.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from neuralsight.errors import DataError

# IDX type byte -> (numpy dtype string, bytes per item)
_TYPES = {0x08: (">u1", 1), 0x09: (">i1", 1), 0x0B: (">i2", 2), 0x0C: (">i4", 4), 0x0D: (">f4", 4),
          0x0E: (">f8", 8)}
FIX = "re-download it or reinstall the Debian package dataset-fashion-mnist"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err.strerror or err}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise DataError(f"IDX file {path} is a truncated or corrupt gzip file ({err}); {FIX}") from None
    return raw


def read_idx(path: Path | str):
    """Read one IDX file (gzip or plain) into a numpy array.

    Args:
        path: the ``.gz`` or uncompressed IDX file.

    Returns:
        ``numpy.ndarray`` with the file's shape, e.g. ``(60000, 28, 28)`` uint8 images or ``(60000,)`` labels.

    Raises:
        DataError: when the file is missing, not IDX, or shorter/longer than its header says.
    """
    import numpy as np

    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'empty'}); {FIX}")
    dtype, size = _TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {path} is truncated inside its header; {FIX}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + size * int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"IDX file {path} is {what}: {len(data):,} bytes, expected {expected:,} for shape "
                        f"{tuple(shape)}; {FIX}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype[1:], copy=False) if size > 1 else arr


def load_mnist_split(folder: Path, split: str):
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 of the ``train`` or ``test`` split."""
    import numpy as np

    prefix = "train" if split == "train" else "t10k"
    folder = Path(folder)
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {prefix} images {images.shape} and labels {labels.shape} do not match; {FIX}")
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder} has no {stem}.gz; {FIX}")

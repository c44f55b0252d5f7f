"""The IDX reader: round trip, truncated/corrupt files give one clear DataError."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from neuralsight.data.idx import load_mnist_split, read_idx
from neuralsight.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


def test_round_trip_gz_and_plain(tmp_path, images):
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "a").write_bytes(idx_bytes(images))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)


def test_truncated_gzip(tmp_path, images):
    data = gzip.compress(idx_bytes(images))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is a truncated or corrupt gzip"):
        read_idx(path)


def test_truncated_payload(tmp_path, images):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images)[:-100]))
    with pytest.raises(DataError, match=r"is truncated: 3,836 bytes, expected 3,936 for shape \(5, 28, 28\)"):
        read_idx(path)


def test_bad_magic_and_empty(tmp_path):
    (tmp_path / "bad").write_bytes(b"hello world, not idx")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "empty")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "missing.gz")


def test_load_split_checks_lengths(tmp_path, images):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    labels = np.arange(4, dtype=np.uint8)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="do not match"):
        load_mnist_split(tmp_path, "test")
    with pytest.raises(DataError, match="no train-images-idx3-ubyte.gz"):
        load_mnist_split(tmp_path, "train")

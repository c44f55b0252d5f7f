"""Pool (avg/max/min, 1D/2D/3D) and rank filters against scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from neuralsight.layers.pool import Pool, median_filter, pad_like_scipy, rank_filter

SCIPY = {"max": ndimage.maximum_filter, "min": ndimage.minimum_filter, "avg": ndimage.uniform_filter}


@pytest.mark.parametrize("mode", ["avg", "max", "min"])
@pytest.mark.parametrize("shape", [(28, 28), (13, 17), (7, 9)])
@pytest.mark.parametrize("k,s", [(2, 2), (3, 3), (3, 1), (3, 2), (4, 3), (5, 2)])
def test_pool2d_equals_scipy_filter_subsampled(mode, shape, k, s):
    x = np.random.default_rng(k * 31 + s).normal(size=shape)
    out = Pool(mode, k, s)(torch.from_numpy(x)[None, None])[0, 0].numpy()
    ref = SCIPY[mode](x, size=k, mode="constant")
    # A scipy window at i covers [i - k//2, i - k//2 + k); the valid pool window j starts at j*s.
    ho, wo = (shape[0] - k) // s + 1, (shape[1] - k) // s + 1
    ref = ref[k // 2: k // 2 + s * ho: s, k // 2: k // 2 + s * wo: s]
    assert out.shape == (ho, wo)
    np.testing.assert_allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize("mode", ["avg", "max", "min"])
@pytest.mark.parametrize("spatial_dims,size", [(1, (31,)), (3, (7, 9, 5))])
def test_pool_1d_and_3d_equal_scipy(mode, spatial_dims, size):
    k, s = 3, 2
    x = np.random.default_rng(spatial_dims).normal(size=size)
    out = Pool(mode, k, s, spatial_dims=spatial_dims)(torch.from_numpy(x)[None, None])[0, 0].numpy()
    ref = SCIPY[mode](x, size=k, mode="constant")
    sl = tuple(slice(k // 2, k // 2 + s * ((n - k) // s + 1), s) for n in size)
    np.testing.assert_allclose(out, ref[sl], atol=1e-12)


def test_min_pool_example_and_halving():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert Pool("min", 2)(x).flatten().tolist() == [0.0, 2.0, 8.0, 10.0]
    assert Pool("max", 2)(x).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert Pool("avg", 2)(torch.randn(2, 3, 28, 28)).shape == (2, 3, 14, 14)


def test_min_pool_gradient_flows_to_argmin():
    x = torch.tensor([[[[4.0, 1.0], [3.0, 2.0]]]], requires_grad=True)
    Pool("min", 2)(x).sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]
    y = torch.randn(2, 3, 9, 9, requires_grad=True)
    out = Pool("min", 3, 2)(y)
    out.sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.sum() == out.numel()


def test_pool_rejects_bad_mode():
    with pytest.raises(ValueError, match="avg"):
        Pool("median", 2)


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("padding", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_median_filter_equals_scipy(k, padding):
    x = np.random.default_rng(k).normal(size=(13, 11))
    out = median_filter(torch.from_numpy(x), k, padding=padding).numpy()
    np.testing.assert_allclose(out, ndimage.median_filter(x, size=k, mode=padding), atol=1e-12)


def test_rank_filter_min_max_and_valid():
    x = np.random.default_rng(1).normal(size=(10, 12))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(rank_filter(t, 3, 0).numpy(), ndimage.minimum_filter(x, 3), atol=1e-12)
    np.testing.assert_allclose(rank_filter(t, 3, -1).numpy(), ndimage.maximum_filter(x, 3), atol=1e-12)
    valid = median_filter(t, 3, padding=None)
    assert valid.shape == (8, 10)
    np.testing.assert_allclose(valid.numpy(), ndimage.median_filter(x, 3)[1:-1, 1:-1], atol=1e-12)
    np.testing.assert_allclose(median_filter(torch.from_numpy(x[0]), 5, spatial_dims=1).numpy(),
                               ndimage.median_filter(x[0], 5), atol=1e-12)


def test_median_removes_salt_and_pepper():
    img = torch.zeros(20, 20)
    img[5, 5] = 1.0
    img[10, 12] = -1.0
    assert median_filter(img, 3).abs().max() == 0


def test_pad_like_scipy_matches_numpy_modes():
    x = np.arange(5.0)
    for ours, theirs in [("reflect", "symmetric"), ("mirror", "reflect"), ("nearest", "edge"), ("wrap", "wrap")]:
        out = pad_like_scipy(torch.from_numpy(x), [(7, 3)], ours).numpy()
        np.testing.assert_array_equal(out, np.pad(x, (7, 3), mode=theirs))

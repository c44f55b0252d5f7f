"""convolve/correlate and classic kernels against scipy.signal references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from neuralsight.layers.conv import (
    DEFAULT_KERNELS,
    convolve,
    gaussian_kernel,
    kernel,
    output_size,
    parse_kernel,
)


@pytest.mark.parametrize("shape", [(28, 28), (17, 23), (9, 5)])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (1, 4), (4, 4)])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_convolve2d_matches_scipy(shape, kshape, mode, flip, stride):
    rng = np.random.default_rng(hash((shape, kshape, mode)) % 2**32)
    x = rng.normal(size=shape)
    k = rng.normal(size=kshape)
    if mode == "valid" and (kshape[0] > shape[0] or kshape[1] > shape[1]):
        pytest.skip("kernel larger than input")
    ref_fn = signal.convolve2d if flip else signal.correlate2d
    ref = ref_fn(x, k, mode=mode)[::stride, ::stride]
    out = convolve(torch.from_numpy(x), torch.from_numpy(k), mode=mode, stride=stride, flip=flip)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("n,k", [(50, 3), (31, 9), (10, 4)])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_convolve1d_matches_numpy(n, k, mode):
    rng = np.random.default_rng(n * k)
    x, w = rng.normal(size=n), rng.normal(size=k)
    out = convolve(torch.from_numpy(x), torch.from_numpy(w), mode=mode)
    np.testing.assert_allclose(out.numpy(), signal.convolve(x, w, mode=mode, method="direct"), atol=1e-10)
    corr = convolve(torch.from_numpy(x), torch.from_numpy(w), mode=mode, flip=False)
    np.testing.assert_allclose(corr.numpy(), signal.correlate(x, w, mode=mode, method="direct"), atol=1e-10)


def test_batch_axes_are_kept():
    x = torch.randn(2, 3, 12, 10)
    out = convolve(x, kernel("sobel_x"))
    assert out.shape == (2, 3, 10, 8)
    ref = signal.convolve2d(x[1, 2].double().numpy(), kernel("sobel_x").double().numpy(), mode="valid")
    np.testing.assert_allclose(out[1, 2].numpy(), ref, atol=1e-4)


def test_valid_3x3_loses_two_pixels_as_in_the_lecture():
    assert output_size(28, 3, "valid") == 26
    assert output_size(28, 3, "same") == 28
    assert output_size(28, 3, "valid", stride=2) == 13


def test_sobel_convolution_and_correlation_differ_in_sign():
    x = torch.randn(10, 10)
    conv = convolve(x, kernel("sobel_x"), flip=True)
    corr = convolve(x, kernel("sobel_x"), flip=False)
    torch.testing.assert_close(conv, -corr)
    box = kernel("box")
    torch.testing.assert_close(convolve(x, box, flip=True), convolve(x, box, flip=False))


def test_classic_kernels():
    for name in DEFAULT_KERNELS:
        k = kernel(name)
        assert k.ndim == 2 and torch.isfinite(k).all()
    g = gaussian_kernel(1.5)
    assert g.shape == (11, 11) and abs(float(g.sum()) - 1) < 1e-6
    torch.testing.assert_close(g, g.T)
    assert kernel("box:5").shape == (5, 5)
    assert float(kernel("laplacian").sum()) == 0  # flat regions give zero response


def test_parse_kernel_matrix_forms():
    label, k = parse_kernel("-1,0,1;-2,0,2;-1,0,1")
    torch.testing.assert_close(k, kernel("sobel_x"))
    assert label == "custom 3x3"
    _, k2 = parse_kernel("[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]")
    torch.testing.assert_close(k2, kernel("sobel_x"))
    _, k3 = parse_kernel("1/9 1/9 1/9")
    assert k3.shape == (3,)
    torch.testing.assert_close(k3.sum(), torch.tensor(1 / 3))


@pytest.mark.parametrize("bad,msg", [("1,2;3", "different lengths"), ("1,x;2,3", "not a number"),
                                     ("wavelet", "unknown kernel"), ("gaussian:-1", "sigma")])
def test_parse_kernel_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        parse_kernel(bad)

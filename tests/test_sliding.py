"""Sliding-window inference: tiled equals whole-image inference where both fit, in 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from neuralsight.engine.sliding import importance_map, sliding_window_inference, window_starts
from neuralsight.models.unet import UNet


def test_window_starts_cover_and_stay_inside():
    assert window_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert window_starts(11, 4, 0.25) == [0, 3, 6, 7]
    assert window_starts(3, 8, 0.5) == [0]
    for size, win, ov in [(100, 32, 0.25), (37, 16, 0.5), (64, 64, 0.1)]:
        starts = window_starts(size, win, ov)
        covered = torch.zeros(size, dtype=torch.bool)
        for s in starts:
            assert 0 <= s <= size - win
            covered[s:s + win] = True
        assert covered.all()


def test_importance_map_gaussian_and_constant():
    g = importance_map((9, 9))
    assert g.shape == (9, 9) and float(g.max()) == 1.0 and float(g[4, 4]) == 1.0 and float(g.min()) > 0
    assert g[0, 0] < g[2, 2] < g[4, 4]
    assert torch.equal(importance_map((3, 4, 5), "constant"), torch.ones(3, 4, 5))


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("shape,roi", [((2, 3, 50, 37), (16, 16)), ((1, 3, 13, 17, 9), (8, 8, 8))])
def test_tiled_equals_whole_for_pointwise_model(mode, shape, roi):
    torch.manual_seed(0)
    conv = (torch.nn.Conv2d if len(roi) == 2 else torch.nn.Conv3d)(3, 4, kernel_size=1)
    x = torch.randn(*shape)
    with torch.no_grad():
        whole = conv(x)
    tiled = sliding_window_inference(x, roi, conv, overlap=0.5, sw_batch_size=3, mode=mode)
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_single_window_equals_whole_unet():
    torch.manual_seed(0)
    model = UNet(2, 1, 3, depth=2, base_channels=4).eval()
    x = torch.randn(1, 1, 21, 30)
    with torch.no_grad():
        whole = model(x)
    tiled = sliding_window_inference(x, (64, 64), model, overlap=0.25)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiled_unet_close_to_whole_in_the_interior():
    # A real U-Net sees zero padding at window borders, so tiles differ a little there; Gaussian blending
    # keeps the argmax almost everywhere identical.
    torch.manual_seed(0)
    model = UNet(2, 1, 2, depth=2, base_channels=4).eval()
    x = torch.randn(1, 1, 96, 96).cumsum(-1) / 10
    with torch.no_grad():
        whole = model(x).argmax(1)
    tiled = sliding_window_inference(x, 48, model, overlap=0.5).argmax(1)
    assert (tiled == whole).float().mean() > 0.95


def test_bad_arguments():
    with pytest.raises(ValueError, match="overlap must be"):
        sliding_window_inference(torch.zeros(1, 1, 4, 4), 2, lambda t: t, overlap=1.0)
    with pytest.raises(ValueError, match="roi_size"):
        sliding_window_inference(torch.zeros(1, 1, 4, 4), (2, 2, 2), lambda t: t)

"""U-Net and its N-d blocks: shapes for odd sizes, depths, both up modes, 1D/2D/3D; gradients; overfit."""

from __future__ import annotations

import pytest
import torch

from neuralsight.layers.blocks import ConvBlock, Down, Up, UpSample, make_norm
from neuralsight.models import create_model
from neuralsight.models.unet import UNet


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (5, 31)])
def test_unet_2d_any_size(up, depth, size):
    model = UNet(2, in_channels=3, num_classes=4, depth=depth, base_channels=4, up=up).eval()
    x = torch.randn(2, 3, *size)
    assert model(x).shape == (2, 4, *size)


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("size", [(8, 8, 8), (7, 9, 11)])
def test_unet_3d_any_size(up, size):
    model = UNet(3, in_channels=1, num_classes=3, depth=2, base_channels=2, up=up, norm="instance").eval()
    assert model(torch.randn(1, 1, *size)).shape == (1, 3, *size)


def test_unet_1d():
    model = UNet(1, in_channels=2, num_classes=2, depth=3, base_channels=4, norm="group").eval()
    assert model(torch.randn(3, 2, 37)).shape == (3, 2, 37)


def test_registry_builds_unet():
    model = create_model("unet", spatial_dims=2, in_channels=1, num_classes=2, depth=2, base_channels=4)
    assert isinstance(model, UNet)


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_every_parameter_gets_a_gradient(up, spatial_dims):
    model = UNet(spatial_dims, in_channels=2, num_classes=3, depth=2, base_channels=4, up=up, dropout=0.1)
    x = torch.randn(2, 2, *([9] * spatial_dims))
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_overfits_one_batch():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16)
    y = (x[:, 0] > 0.3).long()                      # a learnable per-pixel rule
    model = UNet(2, 1, 2, depth=2, base_channels=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean()
    assert acc > 0.97, float(acc)


def test_blocks_shapes_and_errors():
    assert ConvBlock(3, 2, 5, kernel_size=5, norm="group", activation="prelu")(torch.randn(1, 2, 6, 7, 8)).shape \
        == (1, 5, 6, 7, 8)
    assert Down(2, 4, 8)(torch.randn(1, 4, 10, 12)).shape == (1, 8, 5, 6)
    assert UpSample(3, 4, 2, "bilinear")(torch.randn(1, 4, 3, 4, 5)).shape == (1, 2, 6, 8, 10)
    up = Up(2, 8, 4, 4)
    assert up(torch.randn(1, 8, 3, 3), torch.randn(1, 4, 7, 7)).shape == (1, 4, 7, 7)
    assert make_norm("group", 2, 12).num_groups == 6  # 8 does not divide 12, so fewer groups
    with pytest.raises(ValueError, match="spatial_dims must be 1, 2 or 3"):
        ConvBlock(4, 1, 1)
    with pytest.raises(ValueError, match="up must be one of"):
        UNet(up="nearest")
    with pytest.raises(ValueError, match="expects input"):
        UNet(2, 1, 2, depth=1, base_channels=2)(torch.randn(1, 1, 4, 4, 4))

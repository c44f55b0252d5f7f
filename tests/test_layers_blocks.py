"""layers/blocks.py: the one ConvBlock / make_norm / make_activation vocabulary, against torch's own layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuralsight.layers.blocks import (
    ACTIVATIONS,
    Conv3d,
    ConvBlock,
    Down,
    Up,
    UpSample,
    make_activation,
    make_norm,
)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_convblock_same_valid_strided_and_transposed_shapes(spatial_dims):
    x = torch.randn(2, 3, *([9] * spatial_dims))
    assert ConvBlock(spatial_dims, 3, 5, 3, dropout=0.1)(x).shape == (2, 5, *([9] * spatial_dims))
    assert ConvBlock(spatial_dims, 3, 5, 3, norm=None, padding="valid")(x).shape == (2, 5, *([7] * spatial_dims))
    assert ConvBlock(spatial_dims, 3, 5, 3, stride=2)(x).shape == (2, 5, *([5] * spatial_dims))   # ceil(9 / 2)
    even = torch.randn(2, 3, *([8] * spatial_dims))
    assert ConvBlock(spatial_dims, 3, 4, 2, stride=2)(even).shape == (2, 4, *([4] * spatial_dims))
    up = ConvBlock(spatial_dims, 3, 4, 2, stride=2, transposed=True)
    assert up(even).shape == (2, 4, *([16] * spatial_dims))


def test_convblock_is_conv_norm_activation_dropout_in_fixed_slots():
    block = ConvBlock(2, 3, 4, 3, norm="batch", activation="relu", dropout=0.2)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout2d]
    assert block[0].bias is None                          # the norm's shift would cancel a bias
    bare = ConvBlock(3, 3, 4, 3, norm=None, activation=None)
    assert [type(m) for m in bare] == [Conv3d, nn.Identity, nn.Identity, nn.Identity]
    assert bare[0].bias is not None
    # Same parameter names whatever the options, so checkpoints do not depend on them.
    assert [k for k, _ in block.named_parameters()] == ["0.weight", "1.weight", "1.bias"]


def test_convblock_equals_its_torch_ops():
    torch.manual_seed(0)
    block = ConvBlock(2, 3, 4, 5, norm="instance", activation="leaky_relu").eval()
    x = torch.randn(2, 3, 11, 7)
    conv = block[0]
    ref = F.leaky_relu(F.instance_norm(F.conv2d(x, conv.weight, None, padding=2), weight=block[1].weight,
                                       bias=block[1].bias), 0.01)
    torch.testing.assert_close(block(x), ref)


def test_every_activation_name_builds_and_matches_torch():
    x = torch.randn(4, 3, 5)
    reference = {"relu": F.relu, "leaky_relu": F.leaky_relu, "elu": F.elu, "gelu": F.gelu, "silu": F.silu,
                 "tanh": torch.tanh, "sigmoid": torch.sigmoid, "prelu": lambda v: F.prelu(v, torch.full((3,), 0.25)),
                 None: lambda v: v}
    assert set(reference) == set(ACTIVATIONS)
    for name in ACTIVATIONS:
        torch.testing.assert_close(make_activation(name, channels=3)(x.clone()), reference[name](x), msg=str(name))
    assert make_activation("prelu", channels=3).weight.shape == (3,)
    with pytest.raises(ValueError, match=r"activation must be one of .*'leaky_relu'.*got 'leakyrelu'"):
        make_activation("leakyrelu")


def test_make_norm_vocabulary():
    assert isinstance(make_norm(None, 2, 4), nn.Identity)
    assert isinstance(make_norm("batch", 1, 4), nn.BatchNorm1d)
    assert isinstance(make_norm("instance", 3, 4), nn.InstanceNorm3d)
    assert make_norm("group", 2, 12).num_groups == 6      # 8 does not divide 12, so fewer groups
    assert make_norm("group", 2, 3).num_groups == 3
    with pytest.raises(ValueError, match="None for no norm"):
        make_norm("none", 2, 4)                           # one spelling: None


def test_convblock_errors():
    with pytest.raises(ValueError, match="spatial_dims must be 1, 2 or 3"):
        ConvBlock(4, 1, 1)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvBlock(2, 1, 1, kernel_size=4)
    with pytest.raises(ValueError, match="padding must be one of"):
        ConvBlock(2, 1, 1, padding="reflect")


def test_unet_blocks_shapes():
    assert Down(2, 4, 8)(torch.randn(1, 4, 10, 12)).shape == (1, 8, 5, 6)
    assert UpSample(3, 4, 2, "bilinear")(torch.randn(1, 4, 3, 4, 5)).shape == (1, 2, 6, 8, 10)
    up = Up(2, 8, 4, 4)
    assert up(torch.randn(1, 8, 3, 3), torch.randn(1, 4, 7, 7)).shape == (1, 4, 7, 7)
    with pytest.raises(ValueError, match="up mode must be one of"):
        UpSample(2, 4, 2, "nearest")


def _weight_grads(conv, x, g, autocast: bool):
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = conv(x)
    y.backward(g.to(y.dtype))
    return y, conv.weight.grad.clone()


def test_conv3d_under_cpu_bf16_gives_right_weight_grads_when_the_input_is_smaller_than_the_kernel():
    """The V-Net's deepest level (4x6x4, 5x5x5 kernels): torch's CPU bf16 kernel gave garbage weight grads there."""
    from neuralsight.layers.blocks import conv_nd

    assert conv_nd(3) is Conv3d and issubclass(Conv3d, torch.nn.Conv3d)
    torch.manual_seed(0)
    conv = conv_nd(3)(64, 64, 5, padding=2)
    for shape in [(4, 6, 4), (4, 4, 4), (2, 6, 6)]:
        for _ in range(5):
            x, g = torch.randn(4, 64, *shape), torch.randn(4, 64, *shape)
            y, got = _weight_grads(conv, x, g, autocast=True)
            _, want = _weight_grads(conv, x, g, autocast=False)
            assert y.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-4, atol=1e-4), shape
    x = torch.randn(2, 64, 6, 6, 6)                      # at least the kernel on every axis: bf16 as usual
    y, got = _weight_grads(conv, x, torch.randn(2, 64, 6, 6, 6), autocast=True)
    assert y.dtype == torch.bfloat16 and torch.isfinite(got).all()
    assert conv.state_dict().keys() == torch.nn.Conv3d(64, 64, 5).state_dict().keys()

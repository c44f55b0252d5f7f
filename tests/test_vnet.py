"""V-Net (Milletari et al. 2016): shapes for odd sizes, gradient flow, overfitting one batch."""

from __future__ import annotations

import pytest
import torch

from neuralsight.models import create_model
from neuralsight.models.vnet import VNet


@pytest.mark.parametrize("size", [(17, 23, 9), (16, 16, 16), (35, 51, 35)])
@pytest.mark.parametrize("depth", [1, 3])
def test_vnet_shapes_odd_sizes(size, depth):
    torch.manual_seed(0)
    model = VNet(in_channels=1, num_classes=3, base_channels=4, depth=depth, kernel_size=3).eval()
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, *size)
    assert torch.isfinite(y).all()


def test_vnet_paper_layout():
    model = VNet(in_channels=1, num_classes=2)  # paper: 16 channels, 4 down-convs, 5x5x5 kernels
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert any(m.kernel_size == (5, 5, 5) for m in convs)
    downs = [m for m in convs if m.stride == (2, 2, 2)]
    assert len(downs) == 4 and all(m.kernel_size == (2, 2, 2) for m in downs)
    ups = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert len(ups) == 4 and all(m.kernel_size == (2, 2, 2) and m.stride == (2, 2, 2) for m in ups)
    assert any(isinstance(m, torch.nn.PReLU) for m in model.modules())
    # Encoder stages have 1, 2, 3, 3, 3 convolutions as in Fig. 1.
    assert [len(model.stem.convs)] + [len(s.convs) for s in model.encoder] == [1, 2, 3, 3, 3]
    assert model.encoder[-1].act.num_parameters == 256


def test_vnet_every_parameter_gets_a_gradient_in_channels_2():
    torch.manual_seed(0)
    model = create_model("vnet", in_channels=2, num_classes=3, base_channels=4, depth=2, kernel_size=3,
                         norm="instance", dropout=0.1)
    x = torch.randn(2, 2, 11, 13, 9)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_vnet_overfits_one_batch():
    torch.manual_seed(0)
    model = VNet(1, 2, base_channels=4, depth=2, kernel_size=3)
    x = torch.randn(2, 1, 12, 12, 12)
    y = (x[:, 0] > 0.3).long()  # (2, 12, 12, 12)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean()
    assert acc > 0.95


def test_vnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        VNet(kernel_size=4)
    with pytest.raises(ValueError, match="num_convs"):
        VNet(depth=2, num_convs=[1, 2])
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        VNet(base_channels=2, depth=1, kernel_size=3)(torch.zeros(1, 8, 8, 8))

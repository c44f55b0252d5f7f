"""V-Net (Milletari et al. 2016) specifics: the paper's layout, 0.1 checkpoint names and norm spelling, errors.

Shapes for odd sizes, gradients, overfit-one-batch and the checkpoint round trip are the shared checks of
tests/model_tester.py (tests/test_models.py).
"""

from __future__ import annotations

import pytest
import torch

from neuralsight.layers.blocks import ConvBlock
from neuralsight.models.vnet import VNet


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
    # Built from the one ConvBlock, like the U-Net and the CNN.
    assert all(isinstance(m, ConvBlock) for m in [*model.down, *model.up, *model.stem.convs])


def test_state_dict_keeps_the_0_1_names_and_loads_both():
    model = VNet(1, 2, base_channels=2, depth=2, kernel_size=3)
    keys = set(model.state_dict())
    assert {"down.0.conv.weight", "down.0.norm.running_mean", "down.0.act.weight", "up.1.conv.weight"} <= keys
    assert not any(k.startswith(("down.0.0.", "up.0.0.")) for k in keys)
    assert {"encoder.0.convs.0.0.weight", "stem.act.weight"} <= keys       # stages were ConvBlock-shaped already
    fresh = VNet(1, 2, base_channels=2, depth=2, kernel_size=3)
    fresh.load_state_dict(model.state_dict())                               # 0.1 names, strict
    fresh.load_state_dict(dict(model.named_parameters()) | dict(model.named_buffers()))  # module names, strict
    for (name, a), b in zip(model.named_parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_norm_none_spelling_of_0_1_still_means_no_norm():
    old = VNet(1, 2, base_channels=2, depth=1, kernel_size=3, norm="none")
    new = VNet(1, 2, base_channels=2, depth=1, kernel_size=3, norm=None)
    assert old.state_dict().keys() == new.state_dict().keys()
    assert isinstance(old.down[0][1], torch.nn.Identity) and old.down[0][0].bias is not None


def test_vnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        VNet(kernel_size=4)
    with pytest.raises(ValueError, match="num_convs"):
        VNet(depth=2, num_convs=[1, 2])
    with pytest.raises(ValueError, match="norm must be one of"):
        VNet(norm="layer")
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        VNet(base_channels=2, depth=1, kernel_size=3)(torch.zeros(1, 8, 8, 8))

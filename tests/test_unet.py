"""U-Net specifics: the encoder's feature pyramid, padding to 2**depth, errors.

Shapes for odd sizes in 1D/2D/3D, gradients, overfit-one-batch and the checkpoint round trip are the
shared checks of tests/model_tester.py (tests/test_models.py).
"""

from __future__ import annotations

import pytest
import torch

from neuralsight.models.unet import UNet


def test_forward_features_is_the_encoder_pyramid():
    model = UNet(2, in_channels=3, num_classes=2, depth=3, base_channels=4).eval()
    feats = model.forward_features(torch.randn(1, 3, 32, 24))
    assert [tuple(f.shape) for f in feats] == [(1, 4, 32, 24), (1, 8, 16, 12), (1, 16, 8, 6), (1, 32, 4, 3)]


def test_padding_does_not_leak_into_the_logits():
    # An odd-size input is padded to a multiple of 2**depth and cropped back: the logits of the visible
    # part equal those of the same image padded by hand.
    torch.manual_seed(0)
    model = UNet(2, in_channels=1, num_classes=2, depth=2, base_channels=4, norm=None).eval()
    x = torch.randn(1, 1, 13, 10)
    padded = torch.nn.functional.pad(x, [0, 2, 0, 3])            # to 16 x 12
    torch.testing.assert_close(model(x), model(padded)[..., :13, :10])


def test_unet_errors():
    with pytest.raises(ValueError, match="up must be one of"):
        UNet(up="nearest")
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet(norm="none")
    with pytest.raises(ValueError, match="depth must be >= 1"):
        UNet(depth=0)
    with pytest.raises(ValueError, match="expects input"):
        UNet(2, 1, 2, depth=1, base_channels=2)(torch.randn(1, 1, 4, 4, 4))

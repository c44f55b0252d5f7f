"""The stage-spec CNN: size arithmetic for every pool mode and kernel size, presets, the explain interface.

Gradients, overfit-one-batch, odd-size outputs and the checkpoint round trip are the shared checks of
tests/model_tester.py (tests/test_models.py).
"""

from __future__ import annotations

import pytest
import torch

from neuralsight.models.cnn import CNN, PRESETS, layer_summary, parse_stage, preset_kwargs


@pytest.mark.parametrize("pool", ["max", "avg", "min", None])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_shapes(pool, kernel_size, padding):
    stages = [{"channels": 4, "kernel_size": kernel_size, "pool": pool},
              {"channels": 6, "kernel_size": kernel_size, "pool": pool, "batchnorm": True}]
    model = CNN(in_channels=3, num_classes=7, image_size=(29, 23), stages=stages, dense=[16], padding=padding)
    x = torch.rand(2, 3, 29, 23)
    feats = model.forward_features(x)
    h, w = 29, 23
    for _ in range(2):
        if padding == "valid":
            h, w = h - kernel_size + 1, w - kernel_size + 1
        if pool:
            h, w = h // 2, w // 2
    assert feats.shape == (2, 6, h, w) == (2, *model.feature_shape)
    assert model.forward_head(feats).shape == (2, 7)
    assert model(x).shape == (2, 7)
    stages = model.forward_intermediates(x)
    assert len(stages) == 2 and torch.equal(stages[-1], feats)
    assert model.gradcam_layer is model.features[-1]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_give_probabilities(preset):
    model = CNN.from_preset(preset, in_channels=1, num_classes=10, image_size=[28, 28]).eval()
    probs = model.predict_proba(torch.rand(4, 1, 28, 28))
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
    assert preset_kwargs(preset) == PRESETS[preset] and preset_kwargs(preset) is not PRESETS[preset]


def test_preset_kwargs_is_a_copy_and_unknown_presets_are_named():
    kwargs = preset_kwargs("fast")
    kwargs["stages"][0]["channels"] = 1
    assert PRESETS["fast"]["stages"][0]["channels"] == 32
    with pytest.raises(ValueError, match="unknown CNN preset 'huge'"):
        CNN.from_preset("huge")


def test_lecture_preset_is_the_lecture_network():
    model = CNN.from_preset("lecture")
    kinds = [r["type"] for r in layer_summary(model, (1, 28, 28))]
    assert kinds == ["Conv2d", "ReLU", "Pool", "Conv2d", "ReLU", "Pool", "Flatten", "Linear", "ReLU", "Linear"]


def test_layer_summary_counts_params_and_macs():
    model = CNN(1, 10, (28, 28), stages=[{"channels": 8, "kernel_size": 3, "pool": "max"}], dense=[])
    rows = layer_summary(model, (1, 28, 28))
    conv = rows[0]
    assert conv["output"] == "8x28x28" and conv["params"] == 8 * 9 + 8 and conv["macs"] == 8 * 28 * 28 * 9
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[-1]["macs"] == 8 * 14 * 14 * 10


def test_input_normalisation_is_part_of_the_model():
    a = CNN(1, 3, (8, 8), stages=[{"channels": 2}], input_mean=[0.5], input_std=[0.25])
    b = CNN(1, 3, (8, 8), stages=[{"channels": 2}])
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(a(x), b((x - 0.5) / 0.25))


def test_parse_stage():
    assert parse_stage("c64 k5 n2 bn d0.1 min2 gelu") == {
        "channels": 64, "kernel_size": 5, "convs": 2, "batchnorm": True, "dropout": 0.1, "pool": "min",
        "pool_size": 2, "activation": "gelu"}
    assert parse_stage("c8 leaky_relu")["activation"] == "leaky_relu"   # the one spelling of layers.blocks
    with pytest.raises(ValueError, match="unknown token 'q7'"):
        parse_stage("c8 q7")
    with pytest.raises(ValueError, match="no channel count"):
        parse_stage("k3 max2")


def test_too_many_pools_is_a_clear_error():
    with pytest.raises(ValueError, match="shrinks"):
        CNN(1, 10, (4, 4), stages=[{"channels": 2, "pool": "max"}] * 3)

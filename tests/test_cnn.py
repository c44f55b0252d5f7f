"""The stage-spec CNN: shapes for every pool mode and kernel size, gradients, overfitting, summaries."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neuralsight.models import create_model
from neuralsight.models.cnn import CNN, PRESETS, layer_summary, parse_stage


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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_every_parameter_gets_a_gradient(preset):
    model = create_model("cnn", preset=preset, in_channels=1, num_classes=10, image_size=[28, 28])
    x = torch.rand(4, 1, 28, 28)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    probs = model.predict_proba(x)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_lecture_preset_is_the_lecture_network():
    model = create_model("cnn", preset="lecture")
    kinds = [r["type"] for r in layer_summary(model, (1, 28, 28))]
    assert kinds == ["Conv2d", "ReLU", "Pool", "Conv2d", "ReLU", "Pool", "Flatten", "Linear", "ReLU", "Linear"]


def test_layer_summary_counts_params_and_macs():
    model = CNN(1, 10, (28, 28), stages=[{"channels": 8, "kernel_size": 3, "pool": "max"}], dense=[])
    rows = layer_summary(model, (1, 28, 28))
    conv = rows[0]
    assert conv["output"] == "8x28x28" and conv["params"] == 8 * 9 + 8 and conv["macs"] == 8 * 28 * 28 * 9
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[-1]["macs"] == 8 * 14 * 14 * 10


def test_overfit_one_batch():
    torch.manual_seed(0)
    stages = [parse_stage("c8 k3 bn max2"), parse_stage("c16 k3 bn min2")]
    model = create_model("cnn", stages=stages, dense=[32], in_channels=1, num_classes=10, image_size=[28, 28])
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(-1) == y).all()
    assert loss.item() < 0.05


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
    with pytest.raises(ValueError, match="unknown token 'q7'"):
        parse_stage("c8 q7")
    with pytest.raises(ValueError, match="no channel count"):
        parse_stage("k3 max2")


def test_too_many_pools_is_a_clear_error():
    with pytest.raises(ValueError, match="shrinks"):
        CNN(1, 10, (4, 4), stages=[{"channels": 2, "pool": "max"}] * 3)

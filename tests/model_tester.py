"""The shared model tester: the same checks for every registered model (smp's ``BaseModelTester`` idea).

For each name in ``neuralsight.models.list_models()`` :class:`ModelTester` checks

- the output shape for every variant in the model's case (odd sizes, other cells or modes), all finite;
- that every parameter gets a finite, non-zero gradient (train mode, every variant);
- overfit-one-batch: the training loss falls by the case's ``overfit_factor`` within ``overfit_steps``
  Adam steps on one fixed batch;
- a save/load round trip through ``engine.checkpoint`` (save, read_state, create_model, load_weights)
  gives bit-identical outputs, after a few training steps so buffers (BatchNorm statistics) have moved.

Each model needs a :class:`ModelCase` in :data:`CASES`; a registered model without one fails
``test_every_registered_model_has_a_case``. ``tests/test_models.py`` collects the tester.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuralsight.models as models

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Family:
    """What models with one input/output contract share: their inputs, outputs, targets and loss."""

    make_input: Callable[[Shape, dict, torch.Generator], torch.Tensor]
    output: Callable[[nn.Module, torch.Tensor], torch.Tensor]          # the tensor the loss reads
    expected_shape: Callable[[Shape, dict], Shape]
    make_target: Callable[[torch.Tensor, dict, torch.Generator], torch.Tensor]
    loss: Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def _pinball(out, target, kwargs):
    from neuralsight.models.forecaster import pinball_loss

    return pinball_loss(out, target, tuple(kwargs.get("quantiles", ())))


CLASSIFIER = Family(  # (B, C, H, W) in [0, 1] -> (B, num_classes)
    make_input=lambda shape, kw, g: torch.rand(shape, generator=g),
    output=lambda model, x: model(x),
    expected_shape=lambda shape, kw: (shape[0], kw["num_classes"]),
    make_target=lambda x, kw, g: torch.arange(len(x)) % kw["num_classes"],
    loss=lambda out, y, kw: F.cross_entropy(out, y))
SEGMENTER = Family(  # (B, C, *S) -> (B, num_classes, *S); the target is a per-pixel rule on channel 0
    make_input=lambda shape, kw, g: torch.randn(shape, generator=g),
    output=lambda model, x: model(x),
    expected_shape=lambda shape, kw: (shape[0], kw["num_classes"], *shape[2:]),
    make_target=lambda x, kw, g: (x[:, 0] > 0.3).long(),
    loss=lambda out, y, kw: F.cross_entropy(out, y))
LANGUAGE_MODEL = Family(  # ids (B, T) -> logits (B, T, V) (and a state)
    make_input=lambda shape, kw, g: torch.randint(0, kw["vocab_size"], shape, generator=g),
    output=lambda model, x: model(x)[0],
    expected_shape=lambda shape, kw: (*shape, kw["vocab_size"]),
    make_target=lambda x, kw, g: torch.randint(0, kw["vocab_size"], x.shape, generator=g),
    loss=lambda out, y, kw: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)))
FORECASTER = Family(  # window (B, W) -> (B, horizon, Q), Q = number of quantiles (1 without)
    make_input=lambda shape, kw, g: torch.randn(shape, generator=g),
    output=lambda model, x: model(x),
    expected_shape=lambda shape, kw: (shape[0], kw["horizon"], max(1, len(kw.get("quantiles", ())))),
    make_target=lambda x, kw, g: torch.randn(len(x), kw["horizon"], generator=g),
    loss=_pinball)
DETECTOR = Family(  # sequence (B, L) -> one logit (B,)
    make_input=lambda shape, kw, g: torch.randn(shape, generator=g),
    output=lambda model, x: model(x),
    expected_shape=lambda shape, kw: (shape[0],),
    make_target=lambda x, kw, g: (torch.arange(len(x)) % 2).float(),
    loss=lambda out, y, kw: F.binary_cross_entropy_with_logits(out, y))


@dataclass(frozen=True)
class ModelCase:
    """A small configuration of one registered model and the inputs to test it on.

    ``variants`` are ``(kwargs overrides, input shape)``; the first one (keep it dropout-free) is also the
    one overfitted and saved. Overfitting must bring the loss below ``first loss / overfit_factor``.
    """

    family: Family
    kwargs: dict
    variants: tuple[tuple[dict, Shape], ...]
    overfit_steps: int = 60
    overfit_factor: float = 10.0
    lr: float = 1e-2


CASES: dict[str, ModelCase] = {
    "cnn": ModelCase(
        CLASSIFIER,
        {"in_channels": 1, "num_classes": 5, "image_size": (12, 12), "dense": [16],
         "stages": [{"channels": 4, "kernel_size": 3, "pool": "max", "batchnorm": True},
                    {"channels": 6, "kernel_size": 3, "pool": "min"}]},
        (({}, (4, 1, 12, 12)),
         ({"in_channels": 3, "image_size": (29, 23), "padding": "valid", "dropout": 0.2, "activation": "gelu"},
          (3, 3, 29, 23)),
         ({"image_size": (9, 13), "stages": [{"channels": 3, "kernel_size": 5, "convs": 2, "pool": "avg",
                                              "dropout": 0.1, "activation": "leaky_relu"}]}, (2, 1, 9, 13)))),
    "unet": ModelCase(
        SEGMENTER,
        {"spatial_dims": 2, "in_channels": 2, "num_classes": 3, "depth": 2, "base_channels": 4},
        (({}, (2, 2, 16, 16)),
         ({"up": "bilinear", "dropout": 0.1}, (1, 2, 17, 23)),
         ({"depth": 3, "norm": None, "activation": "leaky_relu"}, (2, 2, 5, 31)),
         ({"spatial_dims": 3, "norm": "instance", "up": "bilinear"}, (1, 2, 7, 9, 11)),
         ({"spatial_dims": 1, "norm": "group", "depth": 3, "activation": "prelu"}, (3, 2, 37)))),
    "vnet": ModelCase(
        SEGMENTER,
        {"in_channels": 1, "num_classes": 3, "base_channels": 4, "depth": 2, "kernel_size": 3},
        (({}, (2, 1, 12, 12, 12)),
         ({"in_channels": 2, "norm": "instance", "dropout": 0.1}, (1, 2, 11, 13, 9)),
         ({"depth": 1, "norm": None}, (1, 1, 17, 23, 9)),
         ({"norm": "group", "num_convs": [1, 1, 2]}, (1, 1, 9, 8, 7)))),
    "charrnn": ModelCase(
        LANGUAGE_MODEL,
        {"vocab_size": 11, "cell": "lstm", "embedding": 8, "hidden_size": 16, "num_layers": 2},
        (({}, (3, 7)),
         ({"cell": "gru", "num_layers": 1}, (1, 3)),
         ({"cell": "rnn", "dropout": 0.1}, (2, 13)),
         ({"embedding": 16, "tie_weights": True}, (2, 5))),
        lr=3e-2),
    "forecaster": ModelCase(
        FORECASTER,
        {"cell": "lstm", "input_window": 10, "horizon": 4, "hidden_size": 12, "quantiles": (0.1, 0.5, 0.9)},
        (({}, (6, 10)),
         ({"cell": "gru", "quantiles": (), "num_layers": 2, "dropout": 0.1}, (1, 5)),
         ({"cell": "rnn", "residual": False}, (2, 17))),
        overfit_steps=100, lr=3e-2),
    "window_mlp": ModelCase(
        FORECASTER,
        {"input_window": 10, "horizon": 4, "hidden_size": 12, "quantiles": (0.2, 0.8)},
        (({}, (6, 10)),
         ({"input_window": 7, "quantiles": (), "num_layers": 1, "residual": False}, (1, 7))),
        overfit_steps=100, lr=3e-2),
    "position_ffn": ModelCase(
        DETECTOR, {"length": 12, "hidden_size": 8},
        (({}, (6, 12)), ({"length": 7}, (1, 7)))),
    "position_lstm": ModelCase(
        DETECTOR, {"hidden_size": 8},
        (({}, (6, 12)), ({}, (1, 5))), lr=3e-2),
    "position_cnn": ModelCase(
        DETECTOR, {"hidden_size": 8},
        (({}, (6, 12)), ({}, (1, 4)), ({"pattern_length": 3}, (3, 9))), lr=3e-2),
}


def _case(name: str) -> ModelCase:
    if name not in CASES:
        pytest.fail(f"registered model '{name}' has no ModelCase in tests/model_tester.py CASES")
    return CASES[name]


def _build(name: str, overrides: dict, shape: Shape, seed: int = 0):
    """(model, kwargs, input, target) for one variant, all seeded."""
    case = _case(name)
    kwargs = {**case.kwargs, **overrides}
    torch.manual_seed(seed)
    model = models.create_model(name, **kwargs)
    g = torch.Generator().manual_seed(seed)
    x = case.family.make_input(shape, kwargs, g)
    return model, kwargs, x, case.family.make_target(x, kwargs, g)


def _variants(name: str) -> list[tuple[dict, Shape]]:
    return list(_case(name).variants)


class ModelTester:
    """Every check for every registered model; subclass it in a ``test_*.py`` file to collect it."""

    @pytest.fixture(params=sorted(models.list_models()))
    def name(self, request) -> str:
        return request.param

    def test_every_registered_model_has_a_case(self):
        missing = sorted(set(models.list_models()) - set(CASES))
        assert not missing, f"add a ModelCase to tests/model_tester.py CASES for {missing}"
        assert not set(CASES) - set(models.list_models()), "CASES names a model that is not registered"

    def test_output_shape_for_every_variant(self, name):
        family = _case(name).family
        for overrides, shape in _variants(name):
            model, kwargs, x, _ = _build(name, overrides, shape)
            with torch.no_grad():
                out = family.output(model.eval(), x)
            assert tuple(out.shape) == family.expected_shape(shape, kwargs), (overrides, shape)
            assert torch.isfinite(out).all(), (overrides, shape)

    def test_every_parameter_gets_a_finite_nonzero_gradient(self, name):
        family = _case(name).family
        for overrides, shape in _variants(name):
            model, kwargs, x, _ = _build(name, overrides, shape)
            out = family.output(model.train(), x)
            # Random weights on every output, so no gradient cancels by symmetry (as a plain mean could).
            (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
            for pname, p in model.named_parameters():
                assert p.grad is not None, (overrides, pname)
                assert torch.isfinite(p.grad).all(), (overrides, pname)
                assert p.grad.abs().sum() > 0, (overrides, pname)

    def test_overfits_one_batch(self, name):
        case = _case(name)
        overrides, shape = case.variants[0]
        model, kwargs, x, y = _build(name, overrides, shape)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=case.lr)
        losses = []
        for _ in range(case.overfit_steps):
            loss = case.family.loss(case.family.output(model, x), y, kwargs)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < losses[0] / case.overfit_factor, (name, losses[0], losses[-1])

    def test_checkpoint_round_trip_gives_identical_outputs(self, name, tmp_path):
        from neuralsight.engine import checkpoint as ckpt

        case = _case(name)
        overrides, shape = case.variants[0]
        model, kwargs, x, y = _build(name, overrides, shape)
        opt = torch.optim.Adam(model.parameters(), lr=case.lr)
        for _ in range(3):                       # move the weights and the BatchNorm statistics off their init
            loss = case.family.loss(case.family.output(model.train(), x), y, kwargs)
            opt.zero_grad()
            loss.backward()
            opt.step()
        directory = tmp_path / "checkpoints"
        ckpt.save(directory, "best", model, models.model_spec(name, **kwargs), {"step": 3})
        spec = ckpt.read_state(directory, "best")["model"]
        torch.manual_seed(123)                   # a differently initialised copy, so loading must do the work
        loaded = models.create_model(spec["name"], **spec["kwargs"])
        ckpt.load_weights(loaded, directory, "best")
        with torch.no_grad():
            before = case.family.output(model.eval(), x)
            after = case.family.output(loaded.eval(), x)
        assert torch.equal(before, after)

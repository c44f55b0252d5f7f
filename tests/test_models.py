"""Every registered model through the shared checks of tests/model_tester.py, and the registry itself."""

from __future__ import annotations

import doctest
import warnings

import pytest
from model_tester import ModelTester

import neuralsight.models as models
from neuralsight.models import registry


class TestRegisteredModels(ModelTester):
    """Shapes, gradients, overfit-one-batch and checkpoint round trip for each ``list_models()`` name."""


def test_registry_docstring_examples():
    result = doctest.testmod(registry, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_unknown_model_names_it_and_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet50'; registered models: charrnn, cnn, "):
        models.create_model("resnet50")


def test_list_models_describes_every_model_in_one_line():
    described = models.list_models()
    # Every name that 0.1 checkpoints hold is still registered.
    assert {"cnn", "unet", "vnet", "charrnn", "forecaster", "window_mlp"} <= set(described)
    assert list(described) == sorted(described)
    for name, line in described.items():
        assert line and "\n" not in line, name


def test_register_model_warns_on_overwrite():
    entry = registry._REGISTRY["unet"]
    try:
        with pytest.warns(UserWarning, match="Overwriting model 'unet'"):
            registry.register_model("unet")(lambda **kwargs: None)
    finally:
        registry._REGISTRY["unet"] = entry
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.register_model("a_new_test_model", "a model for this test")(dict)
    assert models.create_model("a_new_test_model", a=1) == {"a": 1}
    del registry._REGISTRY["a_new_test_model"]

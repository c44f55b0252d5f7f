"""Model registry: models are registered by name so a checkpoint's ``{"name", "kwargs"}`` rebuilds them."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from neuralsight.errors import CheckpointError

_REGISTRY: dict[str, Callable] = {}
# Modules that register models; imported lazily so `neuralsight --help` stays instant.
_MODULES = ("cnn", "unet", "vnet", "charrnn", "forecaster")


def register_model(name: str):
    def deco(fn):
        _REGISTRY[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"neuralsight.models.{mod}")
        except ModuleNotFoundError as err:
            if err.name != f"neuralsight.models.{mod}":
                raise


def list_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs):
    """Build a registered model by name, e.g. ``create_model("unet", in_channels=3, num_classes=2)``."""
    if name not in _REGISTRY:
        _load_all()
    if name not in _REGISTRY:
        raise CheckpointError(f"unknown model '{name}'", f"known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def model_spec(name: str, **kwargs) -> dict:
    """The JSON-able description stored in checkpoints."""
    return {"name": name, "kwargs": kwargs}

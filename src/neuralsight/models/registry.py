"""The model registry: every model by name, so a checkpoint's ``{"name", "kwargs"}`` rebuilds it.

In the style of timm's ``_registry.py``: model modules decorate their class with :func:`register_model`
and import this module only (never the ``models`` package, which imports them all); :func:`create_model`
builds by name; :func:`list_models` names every model with a one-line description. Importing
``neuralsight.models`` registers every built-in model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, what builds it, and the first line of its docstring."""

    name: str
    builder: Callable
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def _first_line(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def register_model(name: str, description: str | None = None):
    """Class (or function) decorator: register a model builder under ``name``.

    Args:
        name: the registry name that checkpoints store (keep it stable: old runs are rebuilt by it).
        description: one line for ``list_models``; defaults to the first line of the docstring.

    Registering a name twice replaces the first entry and warns, as timm does.
    """

    def decorate(builder):
        if name in _REGISTRY:
            warnings.warn(f"Overwriting model '{name}' in the registry "
                          f"({_REGISTRY[name].builder.__module__}.{_REGISTRY[name].builder.__qualname__})",
                          stacklevel=2)
        _REGISTRY[name] = ModelEntry(name, builder, description or _first_line(builder))
        return builder

    return decorate


def create_model(name: str, **kwargs):
    """Build the model registered as ``name`` with constructor arguments ``kwargs``.

    Raises:
        ValueError: ``name`` is not registered; the message lists the registered names.

    Examples:
        >>> import neuralsight.models
        >>> from neuralsight.models.registry import create_model
        >>> unet = create_model("unet", spatial_dims=2, in_channels=3, num_classes=2, depth=2)
        >>> type(unet).__name__
        'UNet'
        >>> create_model("resnet50")
        Traceback (most recent call last):
        ...
        ValueError: unknown model 'resnet50'; registered models: charrnn, cnn, forecaster, ...
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown model '{name}'; registered models: {', '.join(sorted(_REGISTRY))}")
    return entry.builder(**kwargs)


def list_models() -> dict[str, str]:
    """Every registered model name, sorted, with its one-line description.

    Examples:
        >>> import neuralsight.models
        >>> from neuralsight.models.registry import list_models
        >>> list_models()["vnet"]
        'V-Net for volumes ``(B, in_channels, D, H, W)`` -> logits ``(B, num_classes, D, H, W)``.'
    """
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def model_spec(name: str, **kwargs) -> dict:
    """The JSON-able description stored in checkpoints: ``{"name": name, "kwargs": kwargs}``."""
    return {"name": name, "kwargs": kwargs}

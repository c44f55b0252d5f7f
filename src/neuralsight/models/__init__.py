"""The models: importing this package registers every built-in model (see ``models/registry.py``).

Model modules import ``models.registry``, never this package, so the imports run one way:
``models/__init__`` -> each model module -> ``registry``.
"""

from __future__ import annotations

from neuralsight.models import charrnn, cnn, forecaster, position, unet, vnet  # noqa: F401  (registers them)
from neuralsight.models.registry import create_model, list_models, model_spec, register_model

__all__ = ["create_model", "list_models", "model_spec", "register_model"]

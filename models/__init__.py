"""The project's denoisers: architectures, registry and shipped weights, noise, training."""
from __future__ import annotations

from .registry import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    load_metadata,
    model_names,
    weights_path,
)

__all__ = [
    "ModelSpec",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "load_metadata",
    "model_names",
    "weights_path",
]

"""Registered denoisers: a small factory per variant, its shipped weights and their metadata.

Weights ship as ``models/weights/<name>.safetensors``; their safetensors metadata holds the
training command, data list hash, steps and measured PSNR (see ``models.train``).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from .arch import NoiseMapUNet, UNetConfig


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: UNetConfig
    summary: str
    tier: str  # "fast" (CPU, many streams per GPU) or "base" (GPU default)
    factory: Callable[[UNetConfig], NoiseMapUNet] = field(default=NoiseMapUNet)

    @property
    def temporal(self) -> bool:
        return self.config.temporal

    def build(self) -> NoiseMapUNet:
        return self.factory(self.config)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


register(ModelSpec(
    "fast",
    UNetConfig(unshuffle=4, widths=(20, 48, 96), blocks=(1, 1, 1), head_kernel=1, residual=False,
               gate=True),
    "3-level U-Net on 4x pixel-unshuffled input, gated blend with the input; for CPUs and many streams per GPU",
    tier="fast",
))
register(ModelSpec(
    "base",
    UNetConfig(unshuffle=2, widths=(32, 64, 128), blocks=(2, 2, 2)),
    "3-level residual U-Net on 2x pixel-unshuffled input; the default on GPUs",
    tier="base",
))
register(ModelSpec(
    "base-temporal",
    UNetConfig(unshuffle=2, widths=(32, 64, 128), blocks=(2, 2, 2), temporal=True),
    "base with its previous output as input (recurrent, causal); for video",
    tier="base",
))
register(ModelSpec(
    "fast-temporal",
    replace(_REGISTRY["fast"].config, temporal=True),  # fast's config, whatever it becomes
    "fast with its previous output as input (recurrent, causal); for video on CPUs",
    tier="fast",
))


class UnknownModelError(ValueError):
    pass


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; expected one of: {', '.join(model_names())}"
        ) from None


def weights_path(name: str) -> Path:
    return Path(str(resources.files("models") / "weights" / f"{name}.safetensors"))


def load_metadata(name: str) -> dict[str, str]:
    """The safetensors metadata of the shipped weights ({} when none ship)."""
    from safetensors import safe_open

    path = weights_path(name)
    if not path.exists():
        return {}
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def create_model(name: str, pretrained: bool = True, weights: str | Path | None = None) -> NoiseMapUNet:
    """Build a registered model in eval mode, with its shipped (or the given) weights."""
    from safetensors.torch import load_file

    spec = get_spec(name)
    model = spec.build()
    if weights is not None or pretrained:
        path = Path(weights) if weights is not None else weights_path(name)
        if not path.exists():
            raise FileNotFoundError(f"no weights for model {name!r} at {path}")
        model.load_state_dict(load_file(str(path)))
    return model.eval()


def measured(name: str) -> dict[str, object]:
    """Measured results stored with the weights (PSNR table etc.), parsed from JSON."""
    meta = load_metadata(name)
    return json.loads(meta.get("results", "{}"))

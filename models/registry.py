"""Registered denoisers: a small factory per variant, its shipped weights and their metadata.

Weights ship as ``models/weights/<name>.safetensors``; their safetensors metadata holds the
training command, data list hash, steps and measured PSNR (see ``models.lab.train``).  Set
``DENOISE_WEIGHTS_DIR`` to read ``<name>.safetensors`` from another folder instead (a training
run's output, to evaluate or benchmark it through the product's code; no fallback).

Re-parameterised models (``models.reparam``, e.g. ``fast-rep``) train in a wide form and are
always handed out folded: ``create_model`` folds training-form weights at load time (metadata
``form``: ``unfolded``, or training-form keys) and loads folded ones (``form: folded``) as is.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from .arch import FusionUNet, HalfScaleUNet, NoiseMapUNet, UNetConfig, Yuv420UNet, count_macs
from .errors import UserError
from .reparam import RepNoiseMapUNet, is_unfolded

WEIGHTS_ENV = "DENOISE_WEIGHTS_DIR"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: UNetConfig
    summary: str
    tier: str  # "pico"/"nano"/"tiny" (live on slow CPUs), "fast" (CPU, many streams per GPU) or "base" (GPU default)
    factory: Callable[[UNetConfig], NoiseMapUNet] = field(default=NoiseMapUNet)
    lab: bool = False  # a training variant with no shipped weights: left out of model_names()
    # a recurrent model trained with its previous output warped onto the frame along the
    # optical flow between the noisy frames (``models.align.FlowAligner``), and so run
    aligned: bool = False
    # the registered model whose weights this one loads (the same parameters run another way)
    weights_of: str | None = None

    @property
    def temporal(self) -> bool:
        return self.config.temporal

    @property
    def half_scale(self) -> bool:
        """Run at half resolution (engines open ``weights_of``'s network on half-size frames)."""
        return self.factory is HalfScaleUNet

    def __post_init__(self) -> None:
        if self.half_scale and not self.weights_of:
            raise ValueError(f"{self.name}: a model run at half resolution names the model whose "
                             "network (and weights) it runs: weights_of")

    def build(self) -> NoiseMapUNet:
        """The training form (for a re-parameterised model, the unfolded one)."""
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
    "tiny",
    UNetConfig(unshuffle=4, widths=(16, 32, 64), blocks=(0, 1, 1), head_kernel=1, residual=False,
               gate=True),
    "fast's shape, narrower and with no blocks at the finest level (about 40% of its multiply-adds); "
    "for live video on slow CPUs",
    tier="tiny",
))
register(ModelSpec(
    "nano",
    # tiny without its middle-level block: trained the same way it scores 0.1 to 0.4 dB above
    # tiny on CBSD68 photos but 0.1 to 1.3 dB below it on video frames, so it ranks below tiny
    UNetConfig(unshuffle=4, widths=(16, 32, 64), blocks=(0, 0, 1), head_kernel=1, residual=False,
               gate=True),
    "tiny with a residual block at the coarsest level only (about 27% of fast's multiply-adds); "
    "for 720p live video on slow CPUs",
    tier="nano",
))
register(ModelSpec(
    "pico",
    # nano with the transposed-conv output stage (UNetConfig.tail): 0.67 GMAC/MP, 1.2 to 1.5
    # times nano's speed on a CPU, 0.2 to 0.6 dB below it on video frames
    replace(_REGISTRY["nano"].config, tail="convt", tail_width=16, keep=1),
    "nano with a cheaper output stage: a 3 x 3 conv on the cells, then stride-4 transposed convs "
    "straight to the picture q and a per-pixel weight k on the frame (q + k x); for 720p live video "
    "on the slowest CPUs",
    tier="pico",
))
register(ModelSpec(
    "tiny-half",
    _REGISTRY["tiny"].config,
    "tiny on the frame's 2 x 2 means, upsampled, and the finest brightness detail put back where "
    "it stands out of the noise; tiny's weights, a quarter of its cost: for 720p live video where "
    "no full-resolution tier keeps up",
    tier="tiny-half",
    factory=HalfScaleUNet,
    weights_of="tiny",
))
register(ModelSpec(
    "pico-yuv",
    _REGISTRY["pico"].config,
    "pico's network on YUV 4:2:0 cells (16 luma and 2 x 4 chroma values a 4 x 4 cell), luma out at "
    "full resolution and chroma at half, each as q + k * input (a pilot: see README)",
    tier="pico",
    factory=Yuv420UNet,
    lab=True,
))
register(ModelSpec(
    "tiny-convtk16",
    replace(_REGISTRY["tiny"].config, tail="convt", tail_width=16, keep=1),
    "tiny with pico's output stage (tried: 0.7 dB below tiny on video frames, at nano's speed)",
    tier="tiny",
    lab=True,
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
register(ModelSpec(
    "fast-fusion",
    replace(_REGISTRY["fast"].config, temporal=True),
    "fast with a branch that compares the frame with its previous output, warped onto it along "
    "the optical flow (recurrent, causal); for video on CPUs",
    tier="fast",
    factory=FusionUNet,
    aligned=True,
    lab=True,
))
register(ModelSpec(
    "fast-fusion-wide",
    replace(_REGISTRY["fast"].config, temporal=True),
    "fast-fusion with a 32-channel branch and a second, dilated 3x3 (it sees 28 px)",
    tier="fast",
    factory=functools.partial(FusionUNet, branch=32, wide=True),
    aligned=True,
    lab=True,
))
register(ModelSpec(
    "fast-rep",
    _REGISTRY["fast"].config,  # the deployed (folded) net is exactly fast's
    "fast trained with re-parameterised blocks (3x3+1x1+1x3+3x1+identity, each with BatchNorm), "
    "folded into fast's plain 3x3 convolutions when loaded",
    tier="fast",
    factory=functools.partial(RepNoiseMapUNet, bn=True),
    lab=True,
))
register(ModelSpec(
    "fast-rep-nobn",
    _REGISTRY["fast"].config,
    "fast-rep with a learnt per-channel scale per branch instead of BatchNorm (merged on the fly)",
    tier="fast",
    factory=functools.partial(RepNoiseMapUNet, bn=False),
    lab=True,
))


class UnknownModelError(UserError, ValueError):
    """A model name that is not registered (a user's mistake: one line, exit 2)."""


def model_names(lab: bool = False) -> list[str]:
    """Registered names; with ``lab``, also training variants that ship no weights."""
    return sorted(n for n, s in _REGISTRY.items() if lab or not s.lab)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; expected one of: {', '.join(model_names(lab=True))}"
        ) from None


@functools.cache
def macs_per_pixel(name: str) -> float:
    """Multiply-adds per pixel of ``name``'s network as built (``python -m models list``
    shows it per megapixel; ``--model auto`` orders its tiers by it), counted once on a
    32 x 32 frame: every shipped size divides it, so the count scales exactly with pixels."""
    side = 32
    return count_macs(get_spec(name).build(), side, side) / side**2


def weights_path(name: str) -> Path:
    """``<name>.safetensors`` (the weights of the model it runs another way, ``weights_of``),
    shipped or in ``DENOISE_WEIGHTS_DIR``."""
    spec = _REGISTRY.get(name)
    file = f"{spec.weights_of if spec and spec.weights_of else name}.safetensors"
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser() / file
    return Path(str(resources.files("models") / "weights" / file))


def load_metadata(name: str) -> dict[str, str]:
    """The safetensors metadata of the shipped weights ({} when none ship)."""
    from safetensors import safe_open

    path = weights_path(name)
    if not path.exists():
        return {}
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def create_model(name: str, pretrained: bool = True, weights: str | Path | None = None) -> NoiseMapUNet:
    """Build a registered model in eval mode, with its shipped (or the given) weights; a
    re-parameterised model comes folded (its deploy form, a plain ``NoiseMapUNet``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    spec = get_spec(name)
    model = spec.build()
    if weights is not None or pretrained:
        path = Path(weights) if weights is not None else weights_path(name)
        if not path.exists():
            raise FileNotFoundError(f"no weights for model {name!r} at {path}")
        state = load_file(str(path))
        if isinstance(model, RepNoiseMapUNet):
            with safe_open(str(path), framework="pt") as f:
                form = (f.metadata() or {}).get("form") or ("unfolded" if is_unfolded(state) else "folded")
            if form == "folded":
                model = NoiseMapUNet(spec.config)
        model.load_state_dict(state)
    if isinstance(model, RepNoiseMapUNet):
        model = model.eval().fold()
    return model.eval()


"""Choosing a backend: explicit, or ``auto`` = the first that works, fastest first.

Like pyvirtualcam's camera.py: backends registered by name, tried in order, and when none
works one error that says why each failed.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import (
    BACKENDS,
    DEVICES,
    PRECISIONS,
    BackendUnavailable,
    Engine,
    EngineError,
    check_choice,
)

log = logging.getLogger("engines")


@dataclass(frozen=True)
class Candidate:
    backend: str  # "torch" | "onnxruntime" | "tensorrt"
    device: str  # "cpu" | "cuda..."
    module: str  # engines.<module> with a ``probe(device)`` and an ``ENGINE`` class

    @property
    def label(self) -> str:
        return f"{self.backend}-{'cuda' if self.device.startswith('cuda') else 'cpu'}"


# Order of ``auto`` on the CPU, by measured speed: `python -m engines bench --model fast
# --size 640x360` on the 2-core dev VM gave onnxruntime 29.6 ms of CPU a frame (63 ms wall on
# the busy VM) against torch's 31.9 (76 ms); see README "Engines and speed".  The first use
# exports the ONNX graph once (seconds), cached afterwards.
CPU_ORDER = ("onnxruntime", "torch")

MODULES = {
    "torch": "engines.torch_backend",
    "onnxruntime": "engines.onnxruntime_backend",
    "tensorrt": "engines.tensorrt_backend",
}


def candidates(backend: str, device: str) -> list[Candidate]:
    """The (backend, device) pairs to try, in order."""
    cuda_dev = device if device.startswith("cuda") else "cuda"
    order: list[tuple[str, str]] = []
    if device in ("auto",) or device.startswith("cuda"):
        order += [("tensorrt", cuda_dev), ("torch", cuda_dev)]
    if device in ("auto", "cpu"):
        order += [(b, "cpu") for b in CPU_ORDER]
    if device.startswith("cuda"):
        order += [("onnxruntime", cuda_dev)]  # CUDA/TensorRT execution providers
    if backend != "auto":
        order = [o for o in order if o[0] == backend]
    return [Candidate(b, d, MODULES[b]) for b, d in order]


def _load(c: Candidate) -> Any:
    try:
        mod = importlib.import_module(c.module)
    except ImportError as e:  # a missing optional dependency of that backend
        raise BackendUnavailable(f"cannot import {e.name or e}: {e}") from e
    mod.probe(c.device)
    return mod


def _options_for(c: Candidate, engine: Any, options: dict[str, Any], explicit: bool
                 ) -> dict[str, Any]:
    """The options ``engine`` takes.  One it does not take is an error for a backend asked
    for by name; under ``auto`` it is left out for that backend (``threads`` means nothing to
    TensorRT) and said in the log."""
    params = inspect.signature(engine).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    unknown = sorted(set(options) - set(params))
    if unknown and explicit:
        raise EngineError(f"backend {c.backend} takes no option {', '.join(unknown)}; "
                          f"expected some of: {', '.join(sorted(set(params) - set(FIXED)))}")
    if unknown:
        log.info("engine %s: ignoring %s (not its option)", c.label, ", ".join(unknown))
    return {k: v for k, v in options.items() if k not in unknown}


# What open_engine itself passes every backend.
FIXED = ("self", "model", "device", "precision", "weights")

# Tests replace entries here to simulate what is installed.
Loader = Callable[[Candidate], Any]
loader: Loader = _load


def open_engine(
    model: str,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    weights: str | Path | None = None,
    **options: Any,
) -> Engine:
    """Load ``model`` for the given backend/device/precision (the interface: engines/base.py).

    ``options`` go to the backend (e.g. ``compile=True`` for torch, ``cache_dir`` for
    onnxruntime/tensorrt).  Raises EngineError with one line when nothing can run.
    """
    from models import get_spec
    from models.registry import WEIGHTS_ENV, weights_path

    check_choice("backend", backend, BACKENDS)
    check_choice("device", device, DEVICES)
    check_choice("precision", precision, PRECISIONS)
    try:
        spec = get_spec(model)
    except ValueError as e:
        raise EngineError(str(e)) from None
    if spec.half_scale:  # the network's own engine, fed half-size frames
        from .half_scale import HalfScaleEngine

        return HalfScaleEngine(open_engine(spec.weights_of, backend, device, precision, weights,
                                           **options), model)
    # no weights is no backend's fault: one line, before every backend tries and fails on it
    if weights is None and options.get("net") is None and options.get("onnx_path") is None \
            and not weights_path(model).exists():
        raise EngineError(f"model {model!r} ships no weights (no {weights_path(model)}); a lab "
                          f"model runs with a training run's, from a folder in {WEIGHTS_ENV}")
    tried = candidates(backend, device)
    if not tried:
        raise EngineError(f"backend {backend!r} does not run on device {device!r}")
    reasons: list[str] = []
    for c in tried:
        try:
            mod = loader(c)
            eng = mod.ENGINE(model, device=c.device, precision=precision, weights=weights,
                             **_options_for(c, mod.ENGINE, options, explicit=backend != "auto"))
        except BackendUnavailable as e:
            reasons.append(f"{c.label}: {e}")
            log.debug("engine %s unavailable: %s", c.label, e)
            continue
        except EngineError as e:
            if backend != "auto" or len(tried) == 1:
                raise
            reasons.append(f"{c.label}: {e}")
            continue
        except Exception as e:
            if backend != "auto":
                raise  # a bug in the backend the user asked for: keep the traceback
            # auto: a broken backend must not stop the product; say so and go on
            log.warning("engine %s failed (%s: %s); trying the next", c.label, type(e).__name__, e,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            reasons.append(f"{c.label}: failed with {type(e).__name__}: {e}")
            continue
        if reasons:
            log.info("engine: using %s (skipped %s)", eng.name, "; ".join(reasons))
        else:
            log.info("engine: using %s", eng.name)
        eng.skipped = reasons  # type: ignore[attr-defined]
        return eng
    if backend == "auto":
        raise EngineError(f"no backend can run model {model!r} here: " + "; ".join(reasons))
    raise EngineError(f"backend {backend!r} is unavailable here: " + "; ".join(reasons))

"""The engine interface every runtime implements, and the checks made at its door.

An engine runs one registered model on one device:
``infer(frames, sigma, prev)`` takes (B, H, W, 3) uint8 RGB frames and the noise level in
0..255 units (one value per frame, shape (B,), or a per-pixel map, shape (B, H, W)) and
returns (B, H, W, 3) uint8 RGB.  Temporal models also take ``prev``, the previous output.
"""
from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import UserError

from . import tiles

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("engines")

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


class EngineError(UserError, ValueError):
    """A user mistake or an unavailable backend: the message is one line, shown as is."""


class BackendUnavailable(RuntimeError):
    """Raised by a backend's ``probe``/constructor: why it cannot run here (one line)."""


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    base = value.split(":", 1)[0] if what == "device" else value
    if base not in allowed:
        raise EngineError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (width x height, as every command line takes sizes) -> (1280, 720), as
    (W, H).  The engines keep (H, W), the order of array shapes, and swap where they read it."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise ValueError(f"expected a size like 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def check_inputs(
    frames: Any, sigma: Any, prev: Any, temporal: bool, dtype: type = np.uint8
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate ``infer``'s arguments; return frames, sigma as float32 and prev (or None).

    sigma comes back as (B,) or (B, H, W) float32 in 0..255 units.  ``dtype``: the frames'
    (float32 for ``infer_float``).
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != dtype or frames.ndim != 4 \
            or frames.shape[-1] != 3:
        raise EngineError(f"frames: expected a (B, H, W, 3) {np.dtype(dtype).name} array, "
                          f"got {_describe(frames)}")
    b, h, w, _ = frames.shape
    if b == 0 or h == 0 or w == 0:
        raise EngineError(f"frames: expected a non-empty batch, got shape {frames.shape}")
    sig = np.asarray(sigma, dtype=np.float32)
    if sig.ndim == 0:
        sig = np.full((b,), float(sig), np.float32)
    if sig.shape not in ((b,), (b, h, w)):
        raise EngineError(
            f"sigma: expected shape ({b},) or ({b}, {h}, {w}) in 0..255 units, got {sig.shape}"
        )
    if not np.all(np.isfinite(sig)):
        raise EngineError("sigma: expected finite values in 0..255, got NaN or inf")
    if prev is not None:
        if not temporal:
            prev = None  # spatial models ignore it; callers may pass it unconditionally
        elif not isinstance(prev, np.ndarray) or prev.dtype != np.uint8 or prev.shape != frames.shape:
            raise EngineError(
                f"prev: expected a {frames.shape} uint8 array like frames, got {_describe(prev)}"
            )
    return np.ascontiguousarray(frames), np.ascontiguousarray(sig), prev


def pad_to_min(
    frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None, min_h: int, min_w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[int, int] | None]:
    """Edge-pad checked inputs smaller than ``min_h`` x ``min_w`` (a runtime's smallest
    shape, e.g. a TensorRT profile's) and return them with the size to crop the output back
    to, or None when they are large enough.  Any frame from 1 x 1 up then runs."""
    _, h, w, _ = frames.shape
    ph, pw = max(0, min_h - h), max(0, min_w - w)
    if not ph and not pw:
        return frames, sigma, prev, None
    pad = ((0, 0), (0, ph), (0, pw), (0, 0))
    frames = np.pad(frames, pad, mode="edge")
    if sigma.ndim == 3:  # a per-pixel map
        sigma = np.pad(sigma, pad[:3], mode="edge")
    if prev is not None:
        prev = np.pad(prev, pad, mode="edge")
    return frames, sigma, prev, (h, w)


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


@dataclass
class Pending:
    """A submitted batch; ``result()`` waits for it and returns (B, H, W, 3) uint8."""

    value: np.ndarray | None = None
    slot: Any = None

    def result(self) -> np.ndarray:
        if self.value is None:  # a CUDA slot (torch_backend): wait for its download
            self.slot.done.synchronize()
            self.value = self.slot.host_out.numpy().copy()
            self.slot.pending = None
        return self.value


@dataclass
class CroppedPending(Pending):
    """A padded batch's result (see ``pad_to_min``), cropped back to the frames' size."""

    inner: Pending | None = None
    size: tuple[int, int] = (0, 0)

    def result(self) -> np.ndarray:
        if self.value is None:
            h, w = self.size
            self.value = np.ascontiguousarray(self.inner.result()[:, :h, :w])
        return self.value


class Engine(ABC):
    """A model loaded for one runtime/device/precision.  Use as a context manager."""

    name: str = "?"  # backend actually used, e.g. "torch-cpu"
    takes_float: bool = False  # whether ``infer_float`` runs (the input is converted on the host)

    def __init__(self, model: str, temporal: bool, device: str, precision: str) -> None:
        self.model = model
        self.temporal = temporal
        self.device = device
        self.precision = precision
        self.closed = False
        self.skipped: list[str] = []  # set by open_engine: "backend: why it was not used"

    def infer(self, frames: np.ndarray, sigma: Any, prev: np.ndarray | None = None) -> np.ndarray:
        if self.closed:
            raise EngineError(f"engine {self.name} is closed")
        frames, sig, prev = check_inputs(frames, sigma, prev, self.temporal)
        if prev is None and tiles.needed(frames.shape):  # a large photo: its memory bounded
            return tiles.run(lambda f, s: self._infer(f, s, None), frames, sig)
        return self._infer(frames, sig, prev)

    def infer_float(self, frames: np.ndarray, sigma: Any) -> np.ndarray:
        """``infer`` on (B, H, W, 3) float32 frames in 0..255, unclipped and unrounded: the
        noisy images of the standard evaluation protocol (``python -m models eval``), which an
        8-bit frame cannot hold.  Runtimes that convert frames on the host take them (torch on
        the CPU, ONNX Runtime); the others raise EngineError.  No ``prev``."""
        if not self.takes_float:
            raise EngineError(f"engine {self.name} takes 8-bit frames only; float frames run on "
                              "torch-cpu or onnxruntime")
        if self.closed:
            raise EngineError(f"engine {self.name} is closed")
        frames, sig, _ = check_inputs(frames, sigma, None, self.temporal, np.float32)
        return self._infer(frames, sig, None)

    def submit(self, frames: np.ndarray, sigma: Any, prev: np.ndarray | None = None) -> Pending:
        """Start ``infer``; ``.result()`` returns its output.  CUDA engines return at once, so
        submitting frame N+1 before collecting N overlaps copies with compute; elsewhere
        this runs ``infer`` now.  At most two submitted batches are in flight per engine."""
        return Pending(value=self.infer(frames, sigma, prev))

    @abstractmethod
    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        """Checked inputs in, (B, H, W, 3) uint8 out."""

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} model={self.model} precision={self.precision}>"

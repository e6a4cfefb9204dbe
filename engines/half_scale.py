"""A model run at half resolution (``models.arch.HalfScaleUNet``): the engine of the network
it runs, fed the frame's 2 x 2 means and upsampled after, both by OpenCV on the host.

Inside the ONNX graph the same two resizes cost ONNX Runtime about 6 ms a 720p frame, and the
full-size input and output buffers around the graph as much again (``tiny-half`` took 24 ms a
720p frame so, as long as ``pico`` at full size); on the host they cost under 2 ms and the
network's buffers are a quarter of the size.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .base import Engine

# white noise keeps half its std in a 2 x 2 mean
LEVEL = 0.5


def _even(a: np.ndarray) -> np.ndarray:
    """Edge-pad a (B, H, W[, C]) array to even H and W."""
    ph, pw = a.shape[1] % 2, a.shape[2] % 2
    if not ph and not pw:
        return a
    return np.pad(a, ((0, 0), (0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 3), mode="edge")


def down(a: np.ndarray) -> np.ndarray:
    """(B, H, W[, C]) -> the 2 x 2 means, (B, ceil(H/2), ceil(W/2)[, C]), same dtype."""
    a = _even(a)
    h, w = a.shape[1] // 2, a.shape[2] // 2
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in a])


def up(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """(B, h', w', 3) -> bilinear at twice the size (half-pixel centres, as ``torch``'s
    ``interpolate(align_corners=False)``), cropped to (B, h, w, 3)."""
    size = (2 * a.shape[2], 2 * a.shape[1])
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR)[:h, :w] for f in a])


class HalfScaleEngine(Engine):
    """``inner`` (the network's engine) on half-size frames, as model ``model``."""

    def __init__(self, inner: Engine, model: str) -> None:
        super().__init__(model, inner.temporal, inner.device, inner.precision)
        self.inner = inner
        self.name = inner.name
        self.takes_float = inner.takes_float
        self.skipped = inner.skipped

    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        _, h, w, _ = frames.shape
        small = down(frames)
        level = (down(sigma) if sigma.ndim == 3 else sigma) * np.float32(LEVEL)
        run: Any = self.inner.infer if frames.dtype == np.uint8 else self.inner.infer_float
        return up(run(small, level), h, w)

    def close(self) -> None:
        self.inner.close()
        super().close()

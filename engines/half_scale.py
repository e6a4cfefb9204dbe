"""A model run at half resolution (``models.arch.HalfScaleUNet``): the engine of the network
it runs, fed the frame's 2 x 2 means and upsampled after, both by OpenCV on the host, and the
frame's finest detail put back where it stands out of the noise (``detail``).

Inside the ONNX graph the same two resizes cost ONNX Runtime about 6 ms a 720p frame, and the
full-size input and output buffers around the graph as much again (``tiny-half`` took 24 ms a
720p frame so, as long as ``pico`` at full size); on the host they cost under 2 ms and the
network's buffers are a quarter of the size.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from models.arch import HIGH, LUMA, WINDOW

from .base import Engine
from .phase_split import pad_even

# white noise keeps half its std in a 2 x 2 mean
LEVEL = 0.5


def down(a: np.ndarray) -> np.ndarray:
    """(B, H, W[, C]) -> the 2 x 2 means, (B, ceil(H/2), ceil(W/2)[, C]), same dtype."""
    a = pad_even(a)
    h, w = a.shape[1] // 2, a.shape[2] // 2
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in a])


def up(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """(B, h', w'[, 3]) -> bilinear at twice the size (half-pixel centres, as ``torch``'s
    ``interpolate(align_corners=False)``), cropped to (B, h, w[, 3])."""
    size = (2 * a.shape[2], 2 * a.shape[1])
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR)[:h, :w] for f in a])


def detail(frame: np.ndarray, low: np.ndarray, out: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """``out`` (H, W, 3) uint8 plus the frame's finest brightness detail: the band ``grey(frame)
    - low``, ``low`` being the grey of its 2 x 2 means upsampled ((H, W); uint8, or float32 in
    0..255 with a float frame), each pixel of it kept in the share ``1 - noise / energy`` (an
    empirical Wiener gain), its energy read over ``WINDOW`` x ``WINDOW`` pixels against what
    white noise of ``sigma`` (a number or (H, W)) leaves in the band; added to the three
    channels alike.  Where the band holds picture (edges, texture above the noise) it comes
    back; where it holds noise alone, none of it.  On DAVIS ``bus`` (frames 0-9, white noise,
    ``tiny-half``): sigma 15 28.89 -> 32.39 dB, 30 27.13 -> 28.36 (the band of all three
    channels so: 31.64 / 27.92, for 9 ms a 720p frame against 5)."""
    band = cv2.subtract(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), low, dtype=cv2.CV_32F)
    gain = cv2.blur(band * band, (WINDOW, WINDOW))  # the band's energy, worked into the gain in place
    np.maximum(gain, np.float32(1e-6), out=gain)
    np.divide(np.square(np.float32(HIGH * LUMA) * np.asarray(sigma, np.float32)), gain, out=gain)
    np.subtract(np.float32(1), gain, out=gain)
    band *= np.maximum(gain, np.float32(0), out=gain)
    return cv2.add(out, cv2.cvtColor(band, cv2.COLOR_GRAY2RGB), dtype=cv2.CV_8U)


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
        # first: a float batch may be scaled in place by the engine
        low = up(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small]), h, w)
        out = up(run(small, level), h, w)
        return np.stack([detail(f, lo, o, sg) for f, lo, o, sg in zip(frames, low, out, sigma)])

    def close(self) -> None:
        self.inner.close()
        super().close()

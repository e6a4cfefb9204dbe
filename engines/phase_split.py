"""Coarse noise: run the network on the frame's four 2 x 2 phase sub-images as well.

Real camera noise after a camera's processing (demosaicking, in-camera noise reduction, JPEG)
is coarse: on the PolyU DSLR pairs the noise PCA reads at full resolution is 0.2 to 0.6 levels
where its standard deviation is 2.5 to 8, so most of it lies at frequencies the networks learnt
as picture.  Taking every other pixel (pixel-shuffle downsampling, Zhou et al., "When
AWGN-based Denoiser Meets Real Noises", AAAI 2020) halves the frequencies of the noise and of
the picture alike, and in each of the four sub-images the noise is about as fine as the noise
the networks were trained on.  The sub-images lose some picture to aliasing, so the best result
is the mean of the split output and the ordinary one (``blend``): the two make different
errors.  On white noise the split only loses picture, so ``auto`` blends only where the frame's
noise reads coarse (``models.estimate.coarseness`` at or above ``COARSE``).

Cost: the four sub-images together cost what the frame does, so ``blend`` costs twice the
network's time.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ``--coarse-noise``; the split alone (``run(..., "split")``) is not offered: on the PolyU test
# half it gained ``fast`` 0.02 dB where the blend gains 0.36
MODES = ("auto", "off", "blend")
# ``coarseness`` from which ``auto`` blends.  On the PolyU tune half 41 of 45 pairs read above
# it (3 to 14); the training mix's camera noise, where blending loses 0.1 to 0.6 dB, and clean
# CBSD68 photos read 1 to 4 (2 of 100 CBSD432 photos above 5).
COARSE = 5.0
# The level the sub-images are told, times the frame's: the learned reading (``net``) reads
# coarse noise at its std, the PCA reading already raises it (``models.estimate``: twice the
# half-resolution reading), so the split takes the level as it is.
LEVEL = {"net": 1.4}

Infer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def level_factor(estimator: str) -> float:
    """The split's level over the frame's, for a model read by ``estimator``."""
    return LEVEL.get(estimator, 1.0)


def _even(a: np.ndarray, h: int, w: int) -> np.ndarray:
    ph, pw = h % 2, w % 2
    if not ph and not pw:
        return a
    return np.pad(a, ((0, 0), (0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 3), mode="edge")


def run_split(infer: Infer, frames: np.ndarray, sigma: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Denoise (B, H, W, 3) frames (uint8, or float32 in 0..255) as their four phase
    sub-images, each told ``factor`` times ``sigma`` ((B,) or a (B, H, W) map); ``infer``
    denoises a batch at a level and returns uint8.  Returns (B, H, W, 3) uint8."""
    _, h, w, _ = frames.shape
    x = _even(frames, h, w)
    sig = np.asarray(sigma, np.float32) * np.float32(factor)
    per_pixel = sig.ndim == 3
    if per_pixel:
        sig = _even(sig, h, w)
    out = np.empty(x.shape, np.uint8)
    for i in (0, 1):
        for j in (0, 1):
            part = np.ascontiguousarray(x[:, i::2, j::2])
            level = np.ascontiguousarray(sig[:, i::2, j::2]) if per_pixel else sig
            out[:, i::2, j::2] = infer(part, level)
    return out[:, :h, :w]


def blend(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rounded mean of two uint8 outputs."""
    return ((a.astype(np.uint16) + b + 1) >> 1).astype(np.uint8)


def run(infer: Infer, frames: np.ndarray, sigma: np.ndarray, mode: str, factor: float = 1.0) -> np.ndarray:
    """``infer`` under a resolved mode: ``off`` (the frame as it is), ``split`` or ``blend``."""
    if mode == "off":
        return infer(frames, sigma)
    split = run_split(infer, frames, sigma, factor)
    if mode == "split":
        return split
    if mode == "blend":
        return blend(infer(frames, sigma), split)
    raise ValueError(f"expected a coarse-noise mode off|split|blend, got {mode!r}")

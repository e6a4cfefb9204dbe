"""Coarse noise: run the network on the frame's four 2 x 2 phase sub-images as well.

Real camera noise after a camera's processing (demosaicking, in-camera noise reduction, JPEG)
is coarse: on the PolyU DSLR pairs the noise PCA reads at full resolution is 0.2 to 0.6 levels
where its standard deviation is 2.5 to 8, so most of it lies at frequencies the networks learnt
as picture.  Taking every other pixel (pixel-shuffle downsampling, Zhou et al., "When
AWGN-based Denoiser Meets Real Noises", AAAI 2020) halves the frequencies of the noise and of
the picture alike, and in each of the four sub-images the noise is about as fine as the noise
the networks were trained on.  The sub-images lose some picture to aliasing, so the best result
is the mean of the split output and the ordinary one (``blend``): the two make different
errors.  The smallest tier's split output, averaged in as a third view, adds a little more
for a quarter of ``fast``'s cost (``helper_for``).  On white noise the split only loses
picture, so ``auto`` blends only where the frame's noise reads coarse
(``models.estimate.coarseness`` at or above ``COARSE``).

Heavy coarse noise also gets the split of the split: the sixteen 4 x 4 phase sub-images, where
noise blotches two to four pixels wide are as fine as the white noise the networks learnt.  It
takes the share the frame's own output gives up as the split's level rises (``FADE``), so light
noise is blended as before.  Through ``python -m stream`` on the PolyU halves with their noise
scaled 1, 2, 4 and 6 times, ``fast``: tune +0.00, +0.04, +0.15, +0.27 dB, test +0.00, +0.01,
+0.13, +0.28; ``base`` on the test half -0.01, -0.04, +0.05, +0.24.

Cost: the four sub-images together cost what the frame does, so ``blend`` costs twice the
network's time, plus ``nano``'s; three times between the split levels ``FADE``, where the frame's
own pass and the deeper split's both run.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models import estimate

# ``--coarse-noise``; the split alone is not offered: on the PolyU test half it gained
# ``fast`` 0.02 dB where the blend of two gained 0.36
MODES = ("auto", "off", "blend")
# ``coarseness`` from which ``auto`` blends (``models.estimate.COARSE``: the learned reading
# keeps its texture floor from the same point).
COARSE = estimate.COARSE
# Once a shot is blended it stays blended while its (smoothed) reading stays above
# ``COARSE - HOLD``: on a still clip of a real noisy crop (Canon80D, ISO 12800, its noise scaled
# 4 times, every other frame shifted a pixel) the reading alternates 5.9 and 4.0 with the shift
# (the 4:2:0 chroma), its smoothed value hovered at 4.8 to 5.3, and the frames that fell under
# the gate lost 3 dB live.  It holds only in a shot that already read coarse; white noise of 5
# levels or more reads under 3.
HOLD = 1.0
# The smallest tier, whose split output is averaged in as a third view (``helper_for``).
HELPER = "nano"
# The level the sub-images are told, times the frame's: the learned reading (``net``) reads
# coarse noise at its std, the PCA reading already raises it (``models.estimate``: twice the
# half-resolution reading), so the split takes the level as it is.
LEVEL = {"net": 1.4}
# Heavy coarse noise.  The learned reading follows coarse noise's std while the noise is light
# and falls ever further below it as the noise grows (the PolyU tune half with its noise scaled
# 1, 2, 4 and 6 times: 0.99, 0.71, 0.60 and 0.53 times the std), while the split does best told
# about 1.4 times the std (``fast`` told the true std times 1.0 / 1.4 on those sets: 38.00 /
# 38.18, 33.46 / 33.71, 28.65 / 29.10, 25.77 / 26.22 dB).  So above ``KNEE`` levels the split is
# told more than ``LEVEL["net"]`` times the reading, and where the PCA reading (``models.
# estimate``: twice the half-resolution reading for coarse noise, about 1.4 times the std of
# the scaled sets from k = 2 up) is higher still, up to ``RAISE`` times that while that rule
# gives at most ``RAISE_AT``, and ``RAISE_HEAVY`` times beyond (``split_level``; PCA over-reads
# the heaviest noise; with the 4 x 4 split in the blend, 1.6 / 1.3 from 24 gained ``fast``
# +0.18 / +0.14 / +0.02 dB on the tune half at k = 2 / 4 / 6 over 1.3 throughout).
# And the frame's own output keeps most of heavy coarse noise, so its share of the blend falls
# from a third, at a split level of ``FADE[0]``, to none at ``FADE[1]`` (``full_weight``).
KNEE = 8.0
RAISE = 1.6
RAISE_HEAVY = 1.3
RAISE_AT = 24.0
FADE = (8.0, 16.0)

Infer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def level_factor(estimator: str) -> float:
    """The split's level over the frame's, for a model read by ``estimator``."""
    return LEVEL.get(estimator, 1.0)


def split_level(reading: float, pca: float | None = None) -> float:
    """The level the sub-images are told where the learned estimator reads ``reading`` on
    the frame: ``LEVEL["net"]`` times it up to ``KNEE``, times the reading over ``KNEE``
    beyond; raised towards the ``pca`` reading where that is higher, by at most ``RAISE``
    times up to a level of ``RAISE_AT`` and ``RAISE_HEAVY`` times beyond (the ceiling never
    falls as the reading rises).  Below ``KNEE`` a higher learned reading is as often texture
    read as noise (a knee at 4 cost 0.14 dB on the PolyU test half, where readings reach 7.7);
    the PCA reading tells them apart better (it sees the noise's coarseness), but over-reads
    the heaviest noise (uncapped: -0.11 dB on the tune half at k = 6, +0.53 at k = 4)."""
    level = LEVEL["net"] * reading * max(1.0, reading / KNEE)
    if pca is not None:
        ceiling = max(RAISE * min(level, RAISE_AT), RAISE_HEAVY * level)
        level = max(level, min(pca, ceiling))
    return level


def full_weight(level: float, views: int = 3) -> float:
    """The frame's own output's share of the blend at a split level of ``level``: an equal
    share (1 / ``views``) up to ``FADE[0]``, none from ``FADE[1]``, linear between."""
    t = min(max((FADE[1] - level) / (FADE[1] - FADE[0]), 0.0), 1.0)
    return t / views


def helper_for(model: str | None) -> str | None:
    """The network whose split output ``blend`` also averages in: ``HELPER`` for every model
    but itself.  A second, different network makes different errors: on the PolyU tune half
    the mean of ``base``, its split and ``nano``'s split scored 38.20 dB against the blend's
    38.07, ``fast``'s 38.08 against 37.92, ``tiny``'s 37.85 against 37.57, for ``nano``'s
    cost (a quarter of ``fast``'s, a fiftieth of ``base``'s)."""
    return None if model in (None, HELPER) else HELPER


def pad_even(a: np.ndarray) -> np.ndarray:
    """A (B, H, W[, C]) array edge-padded to even H and W (itself where they are)."""
    ph, pw = a.shape[1] % 2, a.shape[2] % 2
    if not ph and not pw:
        return a
    return np.pad(a, ((0, 0), (0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 3), mode="edge")


def run_split(infer: Infer, frames: np.ndarray, sigma: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Denoise (B, H, W, 3) frames (uint8, or float32 in 0..255) as their four phase
    sub-images, each told ``factor`` times ``sigma`` ((B,) or a (B, H, W) map); ``infer``
    denoises a batch at a level and returns uint8.  Returns (B, H, W, 3) uint8."""
    _, h, w, _ = frames.shape
    x = pad_even(frames)
    sig = np.asarray(sigma, np.float32) * np.float32(factor)
    per_pixel = sig.ndim == 3
    if per_pixel:
        sig = pad_even(sig)
    out = np.empty(x.shape, np.uint8)
    for i in (0, 1):
        for j in (0, 1):
            part = np.ascontiguousarray(x[:, i::2, j::2])
            level = np.ascontiguousarray(sig[:, i::2, j::2]) if per_pixel else sig
            out[:, i::2, j::2] = infer(part, level)
    return out[:, :h, :w]


def run_deep(infer: Infer, frames: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``run_split`` of ``run_split``: the frames as their sixteen 4 x 4 phase sub-images,
    each told ``sigma`` ((B,) or a (B, H, W) map).  Same cost as the frames themselves."""
    return run_split(lambda part, level: run_split(infer, part, level), frames, sigma)


def mean(outputs: list[np.ndarray]) -> np.ndarray:
    """The rounded mean (halves up) of uint8 outputs."""
    n = len(outputs)
    total = np.sum([o.astype(np.uint16) for o in outputs], axis=0, dtype=np.uint16)
    return ((2 * total + n) // (2 * n)).astype(np.uint8)


def blend(outputs: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """The weighted mean of uint8 outputs (weights summing to 1), rounded to uint8 (the plain
    ``mean`` where every view has an equal share)."""
    if max(weights) - min(weights) < 1e-6:
        return mean(outputs)
    out = np.zeros(outputs[0].shape, np.float32)
    for o, w in zip(outputs, weights):
        out += np.float32(w) * o.astype(np.float32)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def run(infer: Infer, frames: np.ndarray, sigma: np.ndarray, mode: str, factor: float = 1.0,
        helper: Infer | None = None, split_sigma: float | np.ndarray | None = None,
        split_infer: Infer | None = None) -> np.ndarray:
    """``infer`` under a resolved mode: ``off`` (the frame as it is) or ``blend`` (the frame's
    output and its split's; with a ``helper`` network, also its split output).  The sub-images
    are told ``factor`` times the frame's level (the helper's: ``LEVEL["net"]`` times); where
    ``split_sigma`` is given (``split_level`` of a learned reading; a (1, H, W) map where the
    frame is the mean of several, each pixel's share of the noise left), both are told it, or
    ``factor`` times the frame's level if that is more (``base`` reads its own level by PCA,
    which reads coarse noise high: on the tune half at twice the PolyU noise 33.51 dB with the
    higher of the two, 33.14 with the learned one's).  The frame's own output weighs
    ``full_weight`` of the split's level, and is not run where that is 0; the share it gives
    up goes to the 4 x 4 split (``run_deep``, told the same), not run where that is 0.
    ``split_infer``: what denoises the sub-images instead of ``infer`` (the network and the
    Wiener pass after it, where the sub-images' noise is about white), the frame's own pass
    still ``infer``."""
    if mode == "off":
        return infer(frames, sigma)
    if mode != "blend":
        raise ValueError(f"expected a coarse-noise mode off|blend, got {mode!r}")
    level = np.asarray(sigma, np.float32)
    own, helper_level = level * np.float32(factor), level * np.float32(LEVEL["net"])
    if split_sigma is not None:
        own = helper_level = np.maximum(np.float32(split_sigma), own)
    views = 3 if helper is not None else 2
    share = full_weight(float(np.mean(own)), views)
    outputs, weights = ([infer(frames, sigma)], [share]) if share > 0 else ([], [])
    sub = split_infer or infer
    outputs.append(run_split(sub, frames, own))
    weights.append(1.0 / views)
    if helper is not None:
        outputs.append(run_split(helper, frames, helper_level))
        weights.append(1.0 / views)
    if share < 1.0 / views:  # the deeper split takes the share the frame's own output gave up
        outputs.append(run_deep(sub, frames, own))
        weights.append(1.0 / views - share)
    return blend(outputs, weights)


def auto_mode(coarseness: float, blending: bool = False) -> str:
    """``--coarse-noise auto`` for a frame whose noise reads ``coarseness``; ``blending``: the
    shot's frame before was blended, which holds while the reading stays above ``COARSE -
    HOLD`` (a video's reading hovering at the gate must not switch the split on and off)."""
    return "blend" if coarseness >= COARSE - (HOLD if blending else 0.0) else "off"

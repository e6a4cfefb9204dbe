"""Noise-level estimation from the frame itself (what ``--sigma auto`` uses).

Classical, training-free: the PCA method of Chen, Zhu & Heng (ICCV 2015).  Natural image
patches live near a low-dimensional subspace; white noise adds the same variance to every
principal direction.  So the smallest eigenvalues of the patch covariance are the noise
variance: drop the largest eigenvalues until the mean of those left equals their median.

Two refinements make it fit camera footage:

- **Weak-texture patches** (the idea of Liu, Tanaka & Okutomi, 2013): only the patches whose
  structure is weakest (gradient energy of a blurred copy, so the noise itself hardly counts)
  enter the covariance, so texture reads less as noise.
- **Two scales.**  Demosaicking, in-camera denoising and compression leave noise that is
  correlated over a few pixels: at full resolution it looks smooth, and the PCA method, which
  sees only its finest part, reads it at a fraction of its level.  Averaged over 2 x 2 blocks,
  white noise of std s keeps s / 2, while correlated noise keeps more.  So the frame is read
  twice, and the ratio of the two readings (twice the half-resolution one over the full one)
  says which kind of noise it is: about 1 for white noise, 3 to 10 for real camera noise.

What it returns is the level to give the denoisers.  For a ratio up to 1.5 that is the
full-resolution reading (white noise: its standard deviation); from 1.5 to 4 it moves
linearly to twice the half-resolution reading, because real camera noise is coarser than
the training synthesis and the networks given its std alone leave some in.  This reading is
``base``'s (``fast`` and the small tiers take the learned one).  The factor was chosen for
``base`` as retrained on the camera-pipeline mix, on the PolyU tune half (the test half's
scenes never looked at): 37.71 / 37.86 / 37.86 / 37.77 dB at 1.5 / 2 / 2.5 / 3 times; on the
project's heavy synthetic camera noise (``python -m models eval --camera-noise 5e-3,2e-2``,
16 photos) 24.52 / 24.71 / 24.81 / 24.78; white noise reads below the ratio and is not
changed.  (The first version, for a ``base`` trained mostly on white noise, stopped at 1.5
times: on the synthetic camera noise it cost 0.5 to 2 dB at twice.)  Measured error on CBSD68
(white noise, all 68 images): +2.2 / +0.7 / +0.4 / -0.2 at sigma 5 / 15 / 25 / 50, against
+4.0 / +2.0 / +1.3 / +0.8 for the plain method on all patches at full resolution.
"""
from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PATCH = 7
MAX_PATCHES = 60000  # per scale, over all channels: keeps a 1080p frame to tens of ms
KEEP_FULL = 0.3  # share of weakest-texture patches used at full resolution
KEEP_HALF = 0.1  # and at half resolution, where texture is denser
MIN_PATCHES = 200
# Frames larger than this (pixels) are read on a mosaic of TILES x TILES tiles spread evenly
# over them, a quarter of the frame: the reading's whole-frame filters took 33 to 38 ms a 720p
# frame on the dev VM (110 ms beside a live run), every 15 frames, and each such frame was
# late enough to drop two or three; on the mosaic 11 ms (medians of 20 frames).  Patches
# across a seam see an edge and are left out with the textured ones.
SAMPLE_ABOVE = 640 * 480
TILES = 4
# half/full reading ratios over which the estimate moves from the full-resolution reading
# (white noise) to the raised half-resolution one (noise correlated over a few pixels)
CORRELATED = (1.5, 4.0)
BOOST = 1.0  # correlated noise is given 2x its half-resolution reading
# ``combined``: the learned reading where it reads more than this (0..255), else PCA
HEAVY = 18.0
# The learned reading's floor on picture texture (0..255).  It reads clean photos at 4 to 12
# (median 7.1 on 40 CBSD432 photos) and white noise of std s on them at about
# sqrt(s^2 + floor^2) (s = 5 / 10 / 15 read 8.7 / 11.9 / 16.0 on 24 CBSD68 photos), so where
# the noise does not read coarse the level given is sqrt(reading^2 - floor^2)
# (``net_level``).  The floor is NET_FLOOR between readings FLOOR_RAMP[1] and [2], none below
# [0] and above [3], linear between:
# - a smooth scene with light real noise reads low (the four PolyU tune pairs that do not read
#   coarse: 3.1 to 3.7, std about 3.5) and keeps its reading;
# - heavy noise outweighs any texture, and the reading is already below heavy camera noise's
#   std (22.9 for 25.8 on 16 photos of the replayed pipeline's heavy end): it keeps it;
# - the level given never falls as the reading rises.
# Camera noise from the replayed pipeline reads at about its std (0.84 to 0.98 times), so the
# floor is where it costs that noise at most 0.15 dB on the training photos (7 would suit
# clean photos and white noise best).  Coarse noise (from ``COARSE``) keeps its reading: it
# reads at or below its std.
NET_FLOOR = 5.0
FLOOR_RAMP = (3.5, 7.5, 12.0, 20.0)
# ``coarseness`` from which noise counts as coarse: the phase split blends from here
# (``engines.phase_split``) and the learned reading keeps its floor.  On the PolyU tune half
# 41 of 45 pairs read above it (3 to 14); the training mix's camera noise, where blending
# loses 0.1 to 0.6 dB, and clean CBSD68 photos read 1 to 4 (2 of 100 CBSD432 photos above 5).
COARSE = 5.0


def _pca_sigma(x: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    eig = np.clip(np.sort(np.linalg.eigvalsh(x.T @ x / len(x))), 0, None)  # ascending
    for n in range(len(eig), 0, -1):
        tail = eig[:n]
        mean = tail.mean()
        if np.sum(tail > mean) == np.sum(tail < mean):
            return float(np.sqrt(mean))
    return float(np.sqrt(eig[0]))


def _weak_texture_sigma(img: np.ndarray, keep: float, patch: int) -> float:
    """PCA noise estimate over the ``keep`` share of patches with the least structure."""
    h, w, c = img.shape
    gray = img[..., 0] if c == 1 else cv2.transform(img, np.full((1, c), 1.0 / c, np.float32))
    gray = cv2.GaussianBlur(gray, (0, 0), 1.5)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=1)
    energy = cv2.blur(gx * gx + gy * gy, (patch, patch))  # centred box mean
    half = patch // 2
    energy = energy[half:h - half, half:w - half]  # one value per patch position
    stride = max(1, int(np.ceil(np.sqrt(energy.size * c / MAX_PATCHES))))
    energy = energy[::stride, ::stride]
    grid = energy.shape
    energy = energy.ravel()
    n = min(energy.size, max(MIN_PATCHES, int(keep * energy.size)))
    rows, cols = np.unravel_index(np.argpartition(energy, n - 1)[:n], grid)
    # gather only the kept patches (a strided window view reshaped would copy all of them)
    x = np.concatenate([sliding_window_view(img[..., k], (patch, patch))[::stride, ::stride]
                        [rows, cols].reshape(n, patch * patch) for k in range(c)])
    return _pca_sigma(x.astype(np.float64))


def _half(img: np.ndarray) -> np.ndarray:
    h, w, c = img.shape
    h, w = h - h % 2, w - w % 2  # INTER_AREA at exactly half size: the mean of each 2 x 2 block
    half = cv2.resize(img[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return half.reshape(h // 2, w // 2, c)


def _mosaic(img: np.ndarray) -> np.ndarray:
    """``img`` as it is up to ``SAMPLE_ABOVE`` pixels, else ``TILES`` x ``TILES`` tiles of an
    eighth of its height and width (even sizes, so the half-resolution reading's 2 x 2 blocks
    stay within a tile), from evenly spaced places, side by side."""
    h, w = img.shape[:2]
    if h * w <= SAMPLE_ABOVE:
        return img
    th, tw = h // (2 * TILES) & ~1, w // (2 * TILES) & ~1
    ys = np.linspace(0, h - th, TILES).astype(int) & ~1
    xs = np.linspace(0, w - tw, TILES).astype(int) & ~1
    return np.ascontiguousarray(np.concatenate(
        [np.concatenate([img[y:y + th, x:x + tw] for x in xs], axis=1) for y in ys], axis=0))


def _two_scales(image: np.ndarray, patch: int = PATCH) -> tuple[float, float | None]:
    """The full-resolution reading and twice the half-resolution one (None where too little
    picture is left at half size)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or min(img.shape[:2]) < patch + 1:
        raise ValueError(f"expected an (H, W[, C]) image at least {patch + 1} px a side, got {img.shape}")
    img = _mosaic(img)
    full = _weak_texture_sigma(img, KEEP_FULL, patch)
    half = _half(img)
    if min(half.shape[:2]) < 4 * patch:  # too little picture left to read at half size
        return full, None
    return full, 2.0 * _weak_texture_sigma(half, KEEP_HALF, patch)


def estimate_sigma(image: np.ndarray, patch: int = PATCH) -> float:
    """Noise level of an (H, W, 3) or (H, W) image for the denoisers, in 0..255 units: the
    standard deviation of white noise; for correlated camera noise, raised (see above).

    Accepts uint8 (0..255) or float arrays in 0..255.  Large frames are sampled with a
    stride so the cost stays a few tens of milliseconds.
    """
    return _level(*_two_scales(image, patch))


def _level(full: float, coarse: float | None) -> float:
    """``estimate_sigma`` from the two readings."""
    if coarse is None:
        return full
    # about 1 for white noise (texture lifts it a little), 3..10 for real camera noise
    ratio = coarse / max(full, 0.25)
    t = min(max((ratio - CORRELATED[0]) / (CORRELATED[1] - CORRELATED[0]), 0.0), 1.0)
    return (1.0 - t) * full + t * (1.0 + BOOST) * coarse


def coarseness(image: np.ndarray) -> float:
    """How coarse the frame's noise is: twice the half-resolution reading over the
    full-resolution one (about 1 for white noise, 2 to 4 for the training mix's camera noise
    and for clean photos, 3 to 14 for the PolyU DSLR pairs; see ``engines.phase_split``).
    1.0 for a frame too small to read at half size, or too small to read at all."""
    return coarseness_and_level(image)[0]


_last_read: tuple[weakref.ref[np.ndarray], tuple[float, float]] | None = None


def coarseness_and_level(image: np.ndarray) -> tuple[float, float]:
    """``coarseness`` and ``estimate_sigma`` (the PCA reading) from one two-scale pass; the
    level NaN for a frame too small to read.  The last frame's values are kept (by identity:
    frames are not written to once made), so the learned reading's gate (``net_level``) and
    the processor's coarseness reading of one frame cost one pass."""
    global _last_read
    if _last_read is not None and _last_read[0]() is image:
        return _last_read[1]
    try:
        full, coarse = _two_scales(image)
    except ValueError:
        values = (1.0, float("nan"))
    else:
        values = (1.0 if coarse is None else coarse / max(full, 0.25)), _level(full, coarse)
    if isinstance(image, np.ndarray):
        _last_read = (weakref.ref(image), values)
    return values


def estimator_for(model: str | None) -> Callable[[np.ndarray], float]:
    """``estimate`` with the method a model's weights name in their metadata (``estimator``:
    ``net`` for a model trained on the learned estimator's noise mix), else ``auto``.

    The two read real noise differently, and each model is best served by the reading it was
    trained with: on the PolyU tune half, ``fast`` (trained on the mix) scored 37.43 dB with the
    learned reading and 37.13 with PCA; ``base`` (older mix) 37.68 with PCA and 37.5 with the
    learned one."""
    method = "auto"
    if model is not None:
        from .registry import load_metadata

        method = load_metadata(model).get("estimator", "pca")  # {} for a model without weights
    return functools.partial(estimate, method=method)


METHODS = ("auto", "net", "pca", "combined")


def method_for(model: str | None) -> str:
    """The reading ``model`` gets with ``--sigma auto`` (``estimator_for``), ``auto``
    resolved: ``net`` where the learned estimator's weights ship, else ``pca``."""
    from . import estimate_net

    method = estimator_for(model).keywords["method"]
    return method if method != "auto" else ("net" if estimate_net.available() else "pca")


def combine(net: float, pca: float | Callable[[], float]) -> float:
    """The ``combined`` reading from the learned one and the PCA one (or a function giving it,
    read only when needed)."""
    if net > HEAVY:
        return net
    return pca() if callable(pca) else pca


def net_level(image: np.ndarray, reading: float | None = None) -> float:
    """The learned reading (``reading`` if already made) with its texture floor
    (``NET_FLOOR``) taken out in quadrature, where the frame's noise does not read coarse."""
    from . import estimate_net

    r = estimate_net.estimate_sigma_net(image) if reading is None else float(reading)
    if not math.isfinite(r) or coarseness(image) >= COARSE:
        return r
    a, b, c, d = FLOOR_RAMP
    floor = NET_FLOOR * min(max((r - a) / (b - a), 0.0), 1.0, max((d - r) / (d - c), 0.0))
    return math.sqrt(max(r * r - floor * floor, 0.0))


def estimate(image: np.ndarray, method: str = "auto") -> float:
    """The noise level ``--sigma auto`` gives the denoisers (0..255): ``net`` the learned
    estimator (``models.estimate_net``, trained on the denoisers' own noise mix), ``pca`` the
    classical reading above; ``combined`` the learned reading where it reads more than
    ``HEAVY`` levels, else PCA (PCA reads heavy noise low in 8-bit frames, whose clipping at 0
    and 255 takes variance away, and scatters on heavy camera noise; the learned reading was
    trained on such frames but over-reads light noise, where PCA is the exact one); ``auto`` is ``net`` where its weights ship, else ``pca``."""
    from . import estimate_net

    if method == "auto":
        method = "net" if estimate_net.available() else "pca"
    if method == "net":
        return net_level(image)
    if method == "pca":
        return estimate_sigma(image)
    if method == "combined":
        if not estimate_net.available():
            return estimate_sigma(image)
        net = estimate_net.estimate_sigma_net(image)
        return combine(net, lambda: estimate_sigma(image))
    raise ValueError(f"expected an estimator method {'|'.join(METHODS)}, got {method!r}")

"""Calibrate to one camera: measure its noise, and keep what was learnt as a profile.

Two kinds of data say what a camera's noise is:

- noisy/clean pairs (``*_real`` / ``*_mean`` as PolyU names them; clean = the mean of many
  shots): the noise is noisy - clean;
- a clip of a (mostly) still scene: the still frames and pixels are found from frame
  differences, the reference is the temporal mean over each still segment, and the noise is a
  frame minus that mean (scaled by sqrt(N / (N - 1)), the part of the noise the mean holds).

From either comes the noise level function (``nlf``: std per channel per brightness bin), the
noise's spatial and cross-channel correlation (``models.noise.correlations``) and the
(noisy, reference) images the fine-tune (``models.calibrate_tune``) learns from; what is kept
of it, the profile on disk, is ``models.calibrate_profile``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .noise import correlations

BINS = 16
MIN_COUNT = 200  # pixels a brightness bin needs before its std counts
# and places in the picture (its pixels over the images added): a clip's 500 frames gave a
# bin of 4 near-white pixels 2 000 samples, and its std missed the truth by 32 % (the rest
# of the curve within 4 %, `python -m stream calibrate`'s clip path, README)
MIN_PLACES = 50


class CalibrationError(UserError, ValueError):
    """Bad input for a calibration (no still part, too short, unknown profile...): one line."""


# --- noise level function -------------------------------------------------------------------

@dataclass
class Nlf:
    """Noise std (0..255) per channel and brightness bin of the reference; None where a bin had
    fewer than ``MIN_COUNT`` pixels, or ``MIN_PLACES`` an image (``array()``: NaN there)."""

    centres: list[float]
    std: list[list[float | None]]  # (3, bins)
    count: list[list[int]]

    def array(self) -> np.ndarray:
        """(3, bins) float, NaN for the empty bins."""
        return np.array([[np.nan if v is None else v for v in row] for row in self.std], np.float64)

    def filled(self) -> np.ndarray:
        """(3, bins) std with empty bins filled from their neighbours (flat at the ends)."""
        std = self.array()
        x = np.array(self.centres)
        out = np.empty_like(std)
        for c in range(std.shape[0]):
            ok = np.isfinite(std[c])
            if not ok.any():
                raise CalibrationError("no brightness bin had enough still pixels to measure the noise")
            out[c] = np.interp(x, x[ok], std[c, ok])
        return out

    def level(self) -> float:
        """One number: the noise std over all measured pixels (channels and bins pooled)."""
        std = np.nan_to_num(self.array()), np.array(self.count, dtype=np.float64)
        return float(np.sqrt((std[0] ** 2 * std[1]).sum() / max(std[1].sum(), 1)))


class NlfAccumulator:
    """Sums of squared noise per channel and brightness bin, over many images."""

    def __init__(self, bins: int = BINS) -> None:
        self.edges = np.linspace(0, 255, bins + 1)
        self.sq = np.zeros((3, bins))
        self.n = np.zeros((3, bins), dtype=np.int64)
        self.images = 0

    def add(self, reference: np.ndarray, noise: np.ndarray, mask: np.ndarray | None = None) -> None:
        """``reference`` (H, W, 3) 0..255, ``noise`` (H, W, 3) the noisy minus the reference,
        ``mask`` (H, W) the pixels to use (None: all)."""
        bins = len(self.edges) - 1
        idx = np.clip(np.digitize(reference, self.edges) - 1, 0, bins - 1)
        for c in range(3):
            i, d = idx[..., c], noise[..., c].astype(np.float64)
            if mask is not None:
                i, d = i[mask], d[mask]
            self.sq[c] += np.bincount(i.ravel(), weights=(d * d).ravel(), minlength=bins)
            self.n[c] += np.bincount(i.ravel(), minlength=bins)
        self.images += 1

    def result(self) -> Nlf:
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(self.sq / self.n)
        std[(self.n < MIN_COUNT) | (self.n < MIN_PLACES * max(self.images, 1))] = np.nan
        centres = (self.edges[:-1] + self.edges[1:]) / 2
        return Nlf(centres.tolist(), [[float(v) if np.isfinite(v) else None for v in row] for row in std],
                   self.n.tolist())


def nlf_map(image: np.ndarray, nlf: Nlf) -> np.ndarray:
    """The per-pixel noise level (H, W) float32 for a noisy (H, W, 3) uint8 frame: each
    channel's curve read at that pixel's (smoothed) brightness, root mean square over channels."""
    smooth = cv2.blur(image, (5, 5)).astype(np.float32)
    curve = nlf.filled()
    var = np.zeros(image.shape[:2], np.float32)
    for c in range(3):
        var += np.interp(smooth[..., c], nlf.centres, curve[c]).astype(np.float32) ** 2
    return np.sqrt(var / 3)


# --- measurements ----------------------------------------------------------------------------

@dataclass
class Sample:
    """One (noisy, reference) image for the fine-tune; ``mask`` the still pixels (None: all)."""

    noisy: np.ndarray  # (H, W, 3) uint8
    reference: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray | None = None


@dataclass
class Measurement:
    source: str
    kind: str  # "pairs" or "clip"
    nlf: Nlf
    correlation: dict[str, float]
    samples: list[Sample]
    used: int  # pairs or frames
    data_hash: str
    size: tuple[int, int] | None = None  # (width, height) of a clip
    notes: list[str] = field(default_factory=list)


def camera_of(path: Path) -> str:
    """PolyU style: the camera is the file name before its first ``_``."""
    return path.name.split("_", 1)[0]


def _median_corr(items: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([c[k] for c in items])) for k in items[0]} if items else {}


def measure_pairs(pairs: list[tuple[Path, Path]], source: str) -> Measurement:
    """The noise of (noisy, clean) image pairs of one camera."""
    from .data import list_digest, read_rgb

    if not pairs:
        raise CalibrationError(f"no *_real/*_mean pairs in {source}")
    acc, corr, samples = NlfAccumulator(), [], []
    for noisy_path, clean_path in pairs:
        noisy, clean = read_rgb(noisy_path), read_rgb(clean_path)
        if noisy.shape != clean.shape:
            raise CalibrationError(f"{noisy_path.name}: noisy {noisy.shape[1]}x{noisy.shape[0]} "
                                   f"and clean {clean.shape[1]}x{clean.shape[0]} differ in size")
        d = noisy.astype(np.float32) - clean
        acc.add(clean, d)
        corr.append(correlations(d))
        samples.append(Sample(noisy, clean))
    digest = list_digest([p for pair in pairs for p in pair])
    return Measurement(source, "pairs", acc.result(), _median_corr(corr), samples, len(pairs), digest)


def _block_msd(frames: np.ndarray, block: int = 8) -> np.ndarray:
    """(T-1, h, w): mean squared change of each block between consecutive frames."""
    t, h, w, _ = frames.shape
    h2, w2 = h // block * block, w // block * block
    out = np.empty((t - 1, h2 // block, w2 // block), np.float32)
    for i in range(t - 1):
        d = frames[i + 1, :h2, :w2].astype(np.float32) - frames[i, :h2, :w2]
        out[i] = (d * d).mean(-1).reshape(h2 // block, block, w2 // block, block).mean((1, 3))
    return out


def still_segments(frames: np.ndarray, min_len: int = 8, block: int = 8,
                   still_share: float = 0.9) -> list[tuple[int, int, np.ndarray]]:
    """Runs of consecutive frames where the scene holds still: (start, end exclusive, mask
    (H, W) of the pixels still throughout the run).  Between two frames of a still scene a
    pixel changes by the noise alone (variance 2 x its own), so a block is still when its mean
    squared change stays under 6 x the clip's median one (most of a mostly still clip is still)
    and under 6 x what the frame's blind noise reading allows (a clip that moves throughout
    would lift the median with it); a frame is still when ``still_share`` of its blocks are."""
    from .estimate import estimate_sigma

    t, h, w, _ = frames.shape
    if t < 2:
        return []
    msd = _block_msd(frames, block)
    bound = 2 * (1.5 * estimate_sigma(frames[0])) ** 2 + 1.0
    still = msd < 6 * (min(float(np.median(msd)), bound) + 0.1)
    frame_still = still.mean((1, 2)) >= still_share  # between frame i and i+1
    out, i = [], 0
    while i < t - 1:
        if not frame_still[i]:
            i += 1
            continue
        j = i
        while j < t - 1 and frame_still[j]:
            j += 1
        # frames i..j are still with respect to each other
        if j + 1 - i >= min_len:
            blocks = still[i:j].all(0)
            blocks = cv2.erode(blocks.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            mask = np.zeros((h, w), bool)
            mask[:blocks.shape[0] * block, :blocks.shape[1] * block] = np.kron(
                blocks, np.ones((block, block), bool))
            out.append((i, j + 1, mask))
        i = j + 1
    return out


def measure_clip(frames: np.ndarray, source: str, min_len: int = 8,
                 max_samples: int = 64) -> Measurement:
    """The noise of a still-scene clip (T, H, W, 3) uint8: still segments, their temporal
    means as references, every frame minus its segment's mean as the noise."""
    t, h, w, _ = frames.shape
    if t < min_len:
        raise CalibrationError(f"{source}: {t} frames; a calibration needs at least {min_len} "
                               "(a few seconds of a still scene)")
    segments = still_segments(frames, min_len)
    if not segments:
        raise CalibrationError(f"{source}: no still part found (no {min_len} consecutive frames "
                               "of an unmoving scene); point the camera at a still scene")
    acc, corr, samples, used = NlfAccumulator(), [], [], 0
    for start, end, mask in segments:
        seg = frames[start:end]
        n = end - start
        mean = np.zeros(seg.shape[1:], np.float64)
        for f in seg:  # frame by frame: a float copy of a whole 20 s clip would not fit
            mean += f
        mean = (mean / n).astype(np.float32)
        scale = np.sqrt(n / (n - 1))
        ref = np.clip(np.round(mean), 0, 255).astype(np.uint8)
        for k in range(n):
            d = (seg[k].astype(np.float32) - mean) * scale
            acc.add(mean, d, mask)
            if k % max(1, n // 4) == 0:
                corr.append(correlations(np.where(mask[..., None], d, 0)))
        step = max(1, (end - start) * len(segments) // max_samples)
        samples += [Sample(seg[k], ref, mask) for k in range(0, n, step)]
        used += n
    digest = hashlib.sha256(frames[::max(1, t // 16)].tobytes()).hexdigest()[:16]
    m = Measurement(source, "clip", acc.result(), _median_corr(corr), samples, used, digest,
                    size=(w, h))
    m.notes.append(f"{len(segments)} still segment(s), {used} of {t} frames, "
                   f"{float(np.mean([s[2].mean() for s in segments])):.0%} of the pixels still")
    return m

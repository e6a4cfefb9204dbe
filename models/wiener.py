"""The second pass on white noise: the network's output as the pilot of an empirical Wiener filter.

BM3D's second step (Dabov et al., 2007) without its grouping: the noisy frame and the network's
output (the pilot) are both taken into 8 x 8 DCT blocks every 4 pixels, in an orthonormal
opponent colour space (where white noise stays white, with the same std); each noisy
coefficient is kept in the share ``pilot² / (pilot² + noise²)``, and the blocks are put back,
each weighted by the inverse of the noise it lets through.  Where the pilot shows picture the
noisy frame's own detail is kept, which a narrow network cannot carry through (it predicts the
clean picture and smooths what it cannot tell from noise); where it shows none, the noise goes.

Told the right level it gains most where the network is weakest and the noise light
(``python -m models wiener-curve``, 12 CBSD432 training photos): ``fast`` +1.8 dB at sigma 5,
+0.7 at 15; ``base`` +0.7 at 5.  On heavy noise the single block has too little to go on, and
the network's output is better: the result is the pilot plus ``share`` times the Wiener
estimate's difference from it, ``share`` falling with the level as measured per model
(``SHARE``).  It assumes white noise: on coarse real camera noise (PolyU) it would put back
the low-frequency noise the network removed, so the processor runs it after the network only
where the frame's noise does not read coarse, and where it does, after the network's pass on
each phase sub-image instead, where that noise is about white (``engines.phase_split``,
``SPLIT``).
"""
from __future__ import annotations

import math
from functools import lru_cache, partial

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .threads import run_parts, workers

BLOCK = 8  # DCT block side
STEP = 4  # pixels between blocks (4: each pixel in four blocks along each axis)
ROWS = 128  # about this many rows worked out at a time (whole STEPs: its blocks are the frame's)

# Per model, (level, share) points, linear in between and flat beyond: the least-squares share
# of the Wiener estimate's difference from the pilot over 12 CBSD432 training photos (every
# 36th of the list; never the CBSD68 test photos) with white noise of that level, capped at 1
# (``python -m models wiener-curve --model NAME``).
SHARE: dict[str, tuple[tuple[float, float], ...]] = {
    "fast": ((2.0, 1.0), (5.0, 1.0), (10.0, 1.0), (15.0, 1.0), (20.0, 0.92), (25.0, 0.84), (35.0, 0.7), (50.0, 0.55)),
    "base": ((2.0, 1.0), (5.0, 0.94), (10.0, 0.7), (15.0, 0.59), (20.0, 0.52), (25.0, 0.48), (35.0, 0.42), (50.0, 0.38)),
    "tiny": ((2.0, 1.0), (5.0, 1.0), (10.0, 1.0), (15.0, 1.0), (20.0, 1.0), (25.0, 1.0), (35.0, 0.98), (50.0, 0.9)),
    "nano": ((2.0, 1.0), (5.0, 1.0), (10.0, 1.0), (15.0, 1.0), (20.0, 1.0), (25.0, 1.0), (35.0, 1.0), (50.0, 0.92)),
    "pico": ((2.0, 1.0), (5.0, 1.0), (10.0, 1.0), (15.0, 1.0), (20.0, 1.0), (25.0, 1.0), (35.0, 1.0), (50.0, 0.99)),
}

# The chroma channels' coefficients are kept as if their noise were this many times its variance:
# a picture's colour varies less than its brightness, and the pilot's colour is the better
# guess (12 CBSD432 training photos, ``fast``: sigma 5 39.24 / 39.60 / 39.71 / 39.76 dB at 1 /
# 2 / 3 / 5, sigma 15 33.22 / 33.26 / 33.26 / 33.24).  And each block's mean is the pilot's:
# the network reads a mean over many pixels well, and real camera noise, which is not white,
# is strongest at the lowest frequencies (the PolyU tune half's pairs that do not read
# coarse lost 0.3 to 0.5 dB with the noisy means kept).
CHROMA = 3.0
_TOLD = torch.tensor([1.0, CHROMA, CHROMA]).reshape(3, 1, 1, 1)

# The phase split's sub-images (``engines.phase_split``), where coarse camera noise is about as
# fine as white noise, get the pass too, told this many times the level the sub-images were
# told: their noise is not quite white (the PolyU tune half through the processor, in-process,
# ``fast``: 38.10 dB without the pass, 38.36 / 38.44 / 38.44 at 1 / 1.4 / 2 times).
SPLIT = math.sqrt(2.0)

# orthonormal opponent colours: (R + G + B) / sqrt 3, (R - B) / sqrt 2, (R - 2G + B) / sqrt 6
_OPP = np.array([[1 / math.sqrt(3)] * 3,
                 [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
                 [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)]], np.float32)


@lru_cache(maxsize=2)
def _dct(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (n x n): row k is the k-th basis vector."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return torch.from_numpy(m.astype(np.float32))


def share_for(model: str | None, level: float) -> float:
    """The share of the Wiener estimate taken for ``model`` at ``level`` (0: none)."""
    points = SHARE.get(model or "")
    if not points or level <= 0:
        return 0.0
    levels, shares = zip(*points)
    return float(np.interp(level, levels, shares))


@lru_cache(maxsize=2)
def _basis(n: int) -> torch.Tensor:
    """The n x n blocks' 2-D DCT basis: (n * n) filters of n x n, row-major (u, v) over (y, x)."""
    d = _dct(n)
    return torch.kron(d, d).reshape(n * n, 1, n, n).contiguous()


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (C, 64, H', W') DCT coefficients of the 8 x 8 blocks every ``STEP`` pixels
    (channels-last: one convolution, which runs several times faster so on the CPU)."""
    c, h, w = x.shape
    # (C, 1, H, W) with channels-last strides (``contiguous`` leaves a single channel's as
    # they are, and the convolution then takes its slow path)
    x = x.contiguous().reshape(c, h, w, 1).permute(0, 3, 1, 2)
    return F.conv2d(x, _basis(BLOCK), stride=STEP)


@lru_cache(maxsize=2)
def _overlap_add(n: int = BLOCK, step: int = STEP) -> torch.Tensor:
    """The blocks' inverse DCTs and their overlap-add as one convolution on the coefficients:
    (step², n², k, k) with k = n / step.  Output channel (y, x) at block position (i, j) sums
    pixel (y, x) of the step x step cell at (i, j) over the k x k blocks that cover it: pixel
    (step a + y, step b + x) of block (i - a, j - b), whose inverse DCT is the basis there."""
    k = n // step
    basis = _basis(n).reshape(n * n, n, n)
    kernel = torch.zeros(step * step, n * n, k, k)
    for a in range(k):
        for b in range(k):
            cell = basis[:, step * a:step * (a + 1), step * b:step * (b + 1)]
            kernel[:, :, k - 1 - a, k - 1 - b] = cell.reshape(n * n, step * step).T
    return kernel


def _unblocks(coef: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The blocks' inverse DCTs (each already times its weight), added back where they came from
    and divided by the weights that cover each pixel: (C, 64, H', W') -> (C, H, W).  A block
    covers whole STEP x STEP cells, so the weights' sum is one number a cell."""
    k = BLOCK // STEP
    cells = F.conv2d(coef, _overlap_add(), padding=k - 1)  # (C, STEP², H' + k - 1, W' + k - 1)
    w = F.pad(weight, (k - 1, k - 1, k - 1, k - 1))
    hc, wc = cells.shape[-2:]
    cover = sum(w[a:a + hc, b:b + wc] for a in range(k) for b in range(k))
    cells /= cover
    return F.pixel_shuffle(cells, STEP)[:, 0]


def wiener(noisy: np.ndarray, pilot: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """The Wiener estimate: ``noisy`` and ``pilot`` (H, W, 3) uint8 or float in 0..255,
    ``level`` the noise std in the same units, a number or per pixel (H, W); float32 (H, W, 3).

    Worked out in strips of about ``ROWS`` rows, each with the STEP rows on either side whose
    blocks reach into it (the same values as the whole frame at once): the coefficients take
    four floats a pixel and channel, and a strip's stay in cache (720p 1.5 times as fast) and
    bound the memory at any size.  The strips run side by side, as many as torch has threads
    (``models.threads.run_parts``)."""
    h = noisy.shape[0]
    per_pixel = np.ndim(level) == 2
    out = np.empty(noisy.shape, np.float32)
    # about ROWS rows a strip, and as many strips as run side by side, or a multiple of that
    k = workers()
    strips = math.ceil(max(1, round(h / ROWS)) / k) * k
    rows = math.ceil(h / strips / STEP) * STEP
    tops = list(range(0, h, rows))
    if len(tops) > 1 and h - tops[-1] < rows // 2:  # no strip too short for its blocks
        tops.pop()

    def strip(top: int, end: int) -> None:
        a, b = max(0, top - STEP), min(h, end + STEP)
        told = np.asarray(level)[a:b] if per_pixel else level
        out[top:end] = _wiener(noisy[a:b], pilot[a:b], told)[top - a:end - a]

    # the strips side by side, torch on one thread in each: beside the engine, decoder and
    # encoder torch's own pool stalled (``models.threads``)
    run_parts([partial(strip, top, end) for top, end in zip(tops, tops[1:] + [h])])
    return out


def _wiener(noisy: np.ndarray, pilot: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """``wiener`` on the whole of its frame."""
    h, w = noisy.shape[:2]
    ph, pw = -(h - BLOCK) % STEP, -(w - BLOCK) % STEP  # pad so the blocks reach the edges
    if h < BLOCK or w < BLOCK:
        return np.asarray(pilot, np.float32)

    def prepare(img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(cv2.transform(np.asarray(img, np.float32), _OPP)).permute(2, 0, 1)
        return F.pad(x[None], (0, pw, 0, ph), mode="reflect")[0]

    with torch.inference_mode():
        cn, cp = _blocks(prepare(noisy)), _blocks(prepare(pilot))
        var = torch.as_tensor(np.square(np.asarray(level, np.float32)))
        if var.ndim == 2:  # per pixel: each block's mean variance
            var = F.pad(var[None, None], (0, pw, 0, ph), mode="replicate")
            var = F.avg_pool2d(var, BLOCK, stride=STEP)[0, 0]
        var = var.clamp_min(1e-4)
        told = var * _TOLD  # the chroma channels told CHROMA times the variance
        mean = cp[:, 0].clone()  # (the blocks' means are the pilot's: no noise let through)
        # gain p² / (p² + v) = 1 - v / (p² + v), in place: fresh arrays of this size cost
        # as much again in page faults as the arithmetic
        gain = cp.square_().add_(told).reciprocal_().mul_(told).neg_().add_(1.0)
        gain[:, 0] = 0.0
        # each block weighted by the inverse of the noise it lets through (BM3D's aggregation);
        # the coefficients are channels-last, so the 64 of a block are contiguous
        weight = torch.linalg.vector_norm(gain.permute(0, 2, 3, 1), dim=-1).square_().sum(0)
        weight = weight.mul_(var).add_(1e-6).reciprocal_()  # (H', W')
        gain *= cn
        gain[:, 0] = mean
        gain *= weight
        out = _unblocks(gain, weight)
        out = np.ascontiguousarray(out[:, :h, :w].permute(1, 2, 0).numpy())
    return cv2.transform(out, _OPP.T.copy())  # back to RGB (the transform is orthonormal)


def refine(noisy: np.ndarray, pilot: np.ndarray, level: np.ndarray | float, share: float) -> np.ndarray:
    """``pilot`` moved ``share`` of the way to the Wiener estimate, uint8 (H, W, 3)."""
    if share <= 0:
        return pilot
    est = wiener(noisy, pilot, level)
    out = pilot.astype(np.float32)
    out += share * (est - out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def second_pass(model: str | None, noisy: np.ndarray, pilot: np.ndarray,
                level: np.ndarray | float) -> np.ndarray:
    """The pass after ``model``'s output ``pilot``, told ``level`` (a number or per pixel), with
    the share the model takes at its mean; ``pilot`` itself where it takes none."""
    return refine(noisy, pilot, level, share_for(model, float(np.mean(level))))


def split_pass(model: str | None, frames: np.ndarray, outputs: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``second_pass`` on each of a batch of phase sub-images (B, h, w, 3) and ``model``'s
    outputs for them, told ``SPLIT`` times the level they were told ((B,) or (B, h, w))."""
    told = np.asarray(level, np.float32) * np.float32(SPLIT)
    return np.stack([second_pass(model, f, o, told[i] if told.ndim > 1 else float(told[min(i, told.size - 1)]))
                     for i, (f, o) in enumerate(zip(frames, outputs))])

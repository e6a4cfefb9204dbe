"""The noise of a frame's cells, read from their differences: what the ``--temporal auto``
motion test (``models.still_camera``, ``models.input_average``, ``models.window_average``)
assumes where the noise is not white.

Real camera noise is coarse (demosaicked, compressed) and shared by the channels, so the means
of 2 x 2 (or larger) cells keep far more of it than white noise of the same level would, and
their grey more than a third of the channels' variance; tested against the white level, every
cell of a still scene read as moved and nothing was averaged.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

GREY = np.full((1, 3), 1 / 3, np.float32)  # the channels' mean, for ``cv2.transform``
# the noise is read on a TILES x TILES grid of tiles: the median of the tiles' robust
# readings (a moving object raises the tiles it covers)
TILES = 4
CAP = 1.3  # a reading is trusted up to this many times the pixels' level told (``test_vars``)
SIGNIFICANT = 1.2  # ... and from this many times the white level
READINGS = 3  # the causal filter and input average take the lowest of this many frames' readings

# a reading of the cells' own noise (std): per channel and of the grey (``read_differences``)
Reading = tuple[float, float]


def read_differences(d: np.ndarray) -> Reading:
    """The noise std of cell differences ``d`` (h, w, 3), read from them: per tile of a
    ``TILES`` x ``TILES`` grid a robust reading of every other cell (``_clipped_rms``), the
    median over the tiles (a moving object raises the tiles it covers), per channel and of the
    grey."""
    sub = d[::2, ::2]
    h, w = sub.shape[0] // TILES, sub.shape[1] // TILES
    if h < 1 or w < 1:
        return 0.0, 0.0
    sub = sub[:h * TILES, :w * TILES]
    grey = cv2.transform(np.ascontiguousarray(sub), GREY)

    def per_tile(x: np.ndarray) -> np.ndarray:  # (TILES * TILES, values of one tile)
        tiles = x.reshape(TILES, h, TILES, w, -1).swapaxes(1, 2)
        return np.abs(tiles.reshape(TILES * TILES, -1))

    return (float(np.median(_clipped_rms(per_tile(sub)))),
            float(np.median(_clipped_rms(per_tile(grey)))))


def _clipped_rms(a: np.ndarray) -> np.ndarray:
    """Per row of absolute differences ``a``, the std of the noise in them: their root mean
    square below 3 times the std their median gives (motion stands out above it; noise whose
    level varies over the tile, with the brightness, has heavier tails than the median sees),
    corrected for the Gaussian's share above 3 std."""
    m = np.median(a, axis=1, keepdims=True) / 0.6745
    kept = a < 3 * m
    n = np.maximum(kept.sum(axis=1), 1)
    rms = np.sqrt((np.square(a) * kept).sum(axis=1) / n / 0.9733)
    return np.where(kept.any(axis=1), rms, m[:, 0])


def lowest(readings: Iterable[Reading], scale: float = 1.0) -> Reading:
    """Each part of ``read_differences``'s readings, the lowest, divided by ``scale``."""
    return tuple(min(parts) / scale for parts in zip(*readings, strict=True))  # type: ignore[return-value]


def test_vars(white: float, read: Reading | None, cap: float) -> tuple[float, float]:
    """(per channel, of the grey) noise variance the motion test assumes for cells whose
    white-noise level is ``white`` (std): where the cells' own reading ``read``
    (``read_differences``) is higher, but not above ``cap`` (``CAP`` times the pixels' level:
    a cell's mean cannot be noisier than its pixels, and the level read from a frame of
    coarse noise is low; a reading above it is motion, a cut), the reading.
    Real camera noise is coarse (demosaicked, compressed) and its channels correlated, so its
    cells keep far more of it than white noise of the same level does, and its grey more than
    a third of the channels' variance; tested against the white level, every cell of a still
    scene read as moved.  A reading under ``SIGNIFICANT`` times the white level (on both) is
    the white level: a pan's misfits raise it that much.  (Its lower quartile over the tiles
    as the evidence instead kept `bikes`' white noise as it was, but lost most of the gain on
    a still camera's light camera noise, whose level varies with the brightness.)"""
    c, y = white, white / math.sqrt(3)
    if read is not None and read[0] <= cap and read[1] <= cap \
            and (read[0] > SIGNIFICANT * c or read[1] > SIGNIFICANT * y):
        c, y = max(c, read[0]), max(y, read[1])
    return c * c, y * y

"""The ``--temporal auto`` input average: a still camera's noisy frames averaged before the denoiser.

Shared by ``stream.temporal`` (the processor calls it before the engine) and
``models.lab.eval_video``; the test is ``models.still_camera``'s.
"""
from __future__ import annotations

import collections
import math

import cv2
import numpy as np

from .cell_noise import CAP, READINGS, Reading, lowest, read_differences, test_vars
from .still_camera import GUARD, StillParams, cell_scale, motion_score


class InputAverage:
    """The noisy input averaged over time where a still camera sees nothing change, before
    the denoiser: ``image, scale = avg(noisy, sigma, still)``, the frame to denoise (uint8,
    rounded) and, per pixel, the factor by which its noise std is below the frame's (float32,
    1 where that pixel was not averaged; None when no pixel was): the denoiser is told
    ``scale`` times the frame's level.

    The mean of n noisy frames of a still scene is the scene plus white noise of std
    sigma / sqrt(n): exactly what the denoiser is trained for, told by its per-pixel noise map
    (FFDNet style).  So on a still camera the network denoises a frame with a quarter of the
    noise after 16 frames, which gains far more than averaging its outputs (its residual
    errors repeat from frame to frame).  The test is :class:`StillCameraFilter`'s, on the
    same 2 x 2 cells of the noisy input against their running average; where a cell moved
    the new frame is taken as it is (its scale back to 1), so nothing trails.
    Nothing is warped: only while ``still`` (the smoothing after the denoiser reads a still
    camera) is anything averaged; otherwise it starts over.  The level used is at most
    ``GUARD`` times a robust reading from the differences, as in the smoothing.
    """

    def __init__(self, params: StillParams | None = None) -> None:
        self.params = params or StillParams()
        self.reset()

    def reset(self) -> None:
        self.mean: np.ndarray | None = None  # (H, W, 3) float32 running mean of the inputs
        self.share: np.ndarray | None = None  # (H, W) its noise variance / the frame's
        self.count: np.ndarray | None = None  # (h, w) frames averaged per cell
        self.last_static = 0.0  # share of cells averaged in the last frame
        # the cells' own noise read at the last frames (``read_differences``)
        self._readings: collections.deque[Reading] = collections.deque(maxlen=READINGS)

    def __call__(self, noisy: np.ndarray, sigma: float,
                 still: bool) -> tuple[np.ndarray, np.ndarray | None]:
        p = self.params
        h, w = noisy.shape[:2]
        k = p.scale or cell_scale(h, w)
        if not still or self.mean is None or self.mean.shape != noisy.shape or min(h, w) < 2 * k:
            return self._start(noisy)
        x = np.asarray(noisy, np.float32)
        if self.share is None:  # the first frame averaged since the start: the mean begins
            self.mean = np.asarray(self.mean, np.float32)
            self.share = np.ones((h, w), np.float32)
            self.count = np.ones((max(h // k, 1), max(w // k, 1)), np.float32)
        cells = (max(w // k, 1), max(h // k, 1))
        g = cv2.resize(x, cells, interpolation=cv2.INTER_AREA)
        d = g - cv2.resize(self.mean, cells, interpolation=cv2.INTER_AREA)
        share = cv2.resize(self.share, cells, interpolation=cv2.INTER_AREA)
        # the level told, capped by a robust reading as in the smoothing (``--strength 3``
        # must not average across motion)
        grid = np.abs(d[::3, ::3]).ravel()
        m = (grid.size - 1) // 2
        robust = float(np.partition(grid, m)[m]) / 0.6745 / math.sqrt(1 + float(share.mean()))
        std = max(min(sigma / k, GUARD * robust), 0.5)
        # the cells' own reading: the lowest of the last few (a cut is one frame)
        self._readings.append(lowest([read_differences(d)], math.sqrt(1 + float(share.mean()))))
        var, grey_var = test_vars(std, lowest(self._readings), CAP * sigma)
        z = motion_score(d, (1 + share) * var, p.window, (1 + share) * grey_var)
        static = np.clip((z - p.hi) / (p.lo - p.hi), 0, 1)
        static = cv2.erode(static, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REFLECT)
        if float((static == 0).mean()) > p.cut:
            return self._start(noisy)
        n_eff = static * self.count
        weight = n_eff / (n_eff + 1)  # of the running mean, per cell
        self.count = np.minimum(n_eff + 1, p.long)
        wp = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        self.mean = cv2.blendLinear(self.mean, x, wp, 1 - wp)
        self.share = (1 - wp) ** 2 + wp * wp * self.share
        self.last_static = float((static > 0).mean())
        if self.last_static == 0:
            return np.asarray(noisy, np.uint8), None
        return cv2.convertScaleAbs(self.mean), np.sqrt(self.share)

    def _start(self, noisy: np.ndarray) -> tuple[np.ndarray, None]:
        """Start over from ``noisy``: kept as it is (no copy) until a frame is averaged with it,
        so a moving camera costs no conversion."""
        self.mean = np.asarray(noisy)
        self.share = self.count = None
        self.last_static = 0.0
        return np.asarray(noisy, np.uint8), None

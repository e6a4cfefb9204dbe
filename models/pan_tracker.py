"""Whether the camera pans, read from two frames by phase correlation on a 3 x 3 grid of tiles
(``models.still_camera`` asks it at every frame, of the denoised frames' grey cells)."""
from __future__ import annotations

import cv2
import numpy as np

SCATTER = 1.0  # a pan's shift must exceed the tiles' median scatter this many times


def _dft_size(n: int) -> int:
    """The largest even size up to ``n`` that ``cv2.dft`` takes without padding."""
    while n > 2 and (n % 2 or cv2.getOptimalDFTSize(n) != n):
        n -= 1
    return n


class PanTracker:
    """``still = tracker.update(grey, still)`` per frame: the camera moved when most tiles agree
    on one shift (their median, within half a pixel, and beyond their median scatter) of over
    ``pan`` px a frame, smoothed; an object crossing a still scene moves a few tiles only, and
    on flat or noisy tiles the readings scatter.  ``scale``: pixels of the frame per cell of
    ``grey``.  Without a previous frame of the same size the answer stays ``still``."""

    def __init__(self, pan: float, scale: int) -> None:
        self.pan, self.scale = pan, scale
        self._hann: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.last: np.ndarray | None = None  # the last frame's cells, high-passed
        self.speed = 0.0  # smoothed global motion (the tiles' shift), px a frame

    def update(self, grey: np.ndarray, still: bool) -> bool:
        # high-passed: a smooth gradient (vignetting, a lit wall) stays where it is in every
        # tile's window and would pull the correlation peak to zero shift
        grey = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)
        prev, self.last = self.last, grey
        if prev is None or prev.shape != grey.shape:
            return still
        h, w = grey.shape
        # tiles of an even size the DFT takes as it is: at other sizes OpenCV's phase
        # correlation reads half a pixel of shift between two copies of the same tile
        th, tw = _dft_size(h // 3), _dft_size(w // 3)
        if min(th, tw) < 12:  # too small to tell; treat as still
            self.speed = 0.0
            return True
        if self._hann is None or self._hann.shape != (th, tw):
            self._hann = cv2.createHanningWindow((tw, th), cv2.CV_32F)
        shifts = []
        for y0 in range(0, 3 * (h // 3), h // 3):
            for x0 in range(0, 3 * (w // 3), w // 3):
                # copies: OpenCV multiplies both inputs by the window in place
                shifts.append(cv2.phaseCorrelate(
                    prev[y0:y0 + th, x0:x0 + tw].copy(), grey[y0:y0 + th, x0:x0 + tw].copy(),
                    self._hann)[0])
        xy = np.asarray(shifts) * self.scale  # (9, 2) in pixels of the frame
        med = np.median(xy, axis=0)
        dist = np.hypot(*(xy - med).T)
        shift = float(np.hypot(*med))
        # a pan: most tiles agree, and on a shift well beyond their scatter
        if int((dist < 0.5).sum()) < 5 or shift < SCATTER * float(np.median(dist)):
            shift = 0.0
        self.speed = 0.5 * self.speed + 0.5 * shift
        return self.speed < self.pan

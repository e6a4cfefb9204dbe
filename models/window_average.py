"""``--temporal auto`` in a file job: each noisy frame averaged with the frames around it.

A file job has no deadline, so the denoiser may wait for the frames after the one it denoises,
as offline video denoisers do (VBM3D, FastDVDnet's five-frame window).  Each neighbour, up to
``radius`` frames before and after, is warped onto the frame along OpenCV DIS optical flow read
between the two noisy frames (grey cells, ``models.still_camera``) or taken as it is where that
fits better (a still camera, where the noise drags the flow), and kept per cell where it
matches: the test is the ``auto`` smoothing's, the mean squared difference over 5 x 5 cells in
units of what the noise alone gives.  The network then denoises the weighted mean, told per
pixel the noise that is left (FFDNet style), as on a still camera with ``InputAverage``.

Why both sides: every neighbour is at most ``radius`` frames away and warped once, by a flow
read directly from it, where a causal running mean is warped frame after frame and can only
reach back; on the suite's clips (``python -m models eval-video --suite``) the window gains
about twice what the causal ``auto`` does.  Shared by ``stream.temporal`` (through
``stream.lookahead``) and ``models.lab.video_methods``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .cell_noise import CAP, lowest, read_differences, test_vars
from .still_camera import (
    GREY,
    GUARD,
    StillParams,
    cell_flow,
    cell_scale,
    cells,
    motion_score,
    pixel_grid,
)

RADIUS = 4  # frames looked at on each side by default (``--lookahead``)
# frames kept before: past ``RADIUS`` they are taken as they are, not warped, which holds only
# where the camera is still (elsewhere most cells moved and the side ends there, after one
# cheap test), so a still camera's mean reaches 16 frames, as the causal ``auto``'s does
PAST = 12
# the neighbours' warps: bicubic keeps the detail a bilinear warp blurs, which ``base`` took for
# the picture (dev clips, gain over per frame: ``bus`` 0-39 +0.86 against +0.40 dB, ``carphone``
# 60-119 +1.95 against +1.71; ``fast`` +0.02 on average)
INTERP = cv2.INTER_CUBIC
# a neighbour, taken as it is, is preferred to its warp unless the warp fits better by this much
# (in units of the noise): on a still camera the flow is noise
ZERO_MARGIN = 0.5
# a cell that differs from the frame by less than this (in the same units; fresh noise gives
# about 1) carries the same noise, not new: a frame repeated with a shift, or a compressed
# video's skipped blocks, which copy the noise from the frame before; averaging it in would
# tell the network less noise than is left, so it is not
FROZEN = 0.3


def same_frame(a: np.ndarray, b: np.ndarray) -> bool:
    """Byte-identical frames (a sparse look first, so most pairs cost next to nothing)."""
    return a is b or (a.shape == b.shape and np.array_equal(a[::17, ::13], b[::17, ::13])
                      and np.array_equal(a, b))


class WindowAverage:
    """``image, scale = avg(frame, before, after, sigma)``: ``frame`` (H, W, 3) uint8 averaged
    with its neighbours ``before`` and ``after`` (nearest first, same size; those further than
    ``warp`` frames only as they are), each weighted per cell by how well it matches;
    ``image`` uint8 (rounded), ``scale`` per pixel the factor by
    which its noise std is below the frame's (float32, None when nothing was averaged): the
    denoiser is told ``scale`` times the frame's level.

    A neighbour in which most cells moved (a cut, a pan the flow missed), or carry the frame's
    own noise (``FROZEN``), is left out, and so are the ones beyond it on that side; a neighbour identical to the one before it (a source
    repeating frames) brings no new noise and is skipped.  The level used is at most ``GUARD``
    times a robust reading from the frame's differences to its nearest neighbour, so
    ``--strength 3`` does not average across motion."""

    def __init__(self, params: StillParams | None = None) -> None:
        self.params = params or StillParams()
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        # per frame (by identity; the frame is held, so its id is not reused): its cells and
        # their grey (each frame is a neighbour of up to radius + PAST others)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.last_used = 0  # neighbours averaged in at the last frame

    def reset(self) -> None:
        self._cache.clear()
        self.last_used = 0

    def _read(self, img: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``img``'s cells and their grey, computed once per frame."""
        hit = self._cache.get(id(img))
        if hit is None or hit[0] is not img:
            c = cells(img, k)
            hit = (img, c, cv2.transform(c, GREY))
            self._cache[id(img)] = hit
        return hit[1], hit[2]

    def _compare(self, g: np.ndarray, grey: np.ndarray, other: np.ndarray, k: int,
                 warped_too: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """A neighbour against the frame (cells ``g``, their ``grey``): the cells' differences
        as it is, and (``warped_too``) the neighbour warped onto the frame along the optical
        flow and its cells' differences."""
        og, ogrey = self._read(other, k)
        if not warped_too:
            return og - g, None, None
        h, w = other.shape[:2]
        flow = cell_flow(self._dis, grey, ogrey)  # frame(x) ~ other(x + flow(x)), cells
        where = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        where *= k
        where += pixel_grid(h, w)
        warped = cv2.remap(other, where, None, INTERP, borderMode=cv2.BORDER_REPLICATE)
        # tested on the warped frame's own cells: a warp of the cells instead scored 0.05 to
        # 0.1 dB lower on the dev clips' pans
        return og - g, warped, cells(warped, k) - g

    @staticmethod
    def _level(sigma: float, k: int,
               nearest: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]) -> tuple[float, float]:
        """The noise variance (per channel, of the grey) of one frame's cells that the test
        assumes, from the differences to its nearest neighbour on each side (``_compare``):
        white noise of ``sigma``, capped by a robust reading of the first (``--strength 3``
        does not average across motion); the cells' own reading where it is higher (coarse
        noise; ``test_vars``), the lowest of the differences, as they are and warped, on
        either side: neither a pan nor a cut on one side reads as noise."""
        grid_d = np.abs(nearest[0][0][::3, ::3]).ravel()  # (the frame after it, if any)
        m = (grid_d.size - 1) // 2
        robust = float(np.partition(grid_d, m)[m]) / 0.6745 / math.sqrt(2)
        read = lowest([read_differences(d) for d0, _, d_w in nearest for d in (d0, d_w)
                       if d is not None], math.sqrt(2))
        std = max(min(sigma / k, GUARD * robust), 0.5)
        return test_vars(std, read, CAP * sigma)

    def __call__(self, frame: np.ndarray, before: Sequence[np.ndarray], after: Sequence[np.ndarray],
                 sigma: float, warp: int = RADIUS) -> tuple[np.ndarray, np.ndarray | None]:
        """``warp``: neighbours up to this many frames away are also tried along the flow;
        those further away only as they are."""
        p = self.params
        h, w = frame.shape[:2]
        k = p.scale or cell_scale(h, w)
        sides = [[f for f in side if f.shape == frame.shape] for side in (after, before)]
        live = {id(frame)} | {id(f) for side in sides for f in side}
        for key in [key for key in self._cache if key not in live]:
            del self._cache[key]
        self.last_used = 0
        if min(h, w) < 2 * k or not any(sides):
            return frame, None
        g, grey = self._read(frame, k)
        flows = min(grey.shape) >= 16  # big enough for the flow's patches
        warped_too = flows and warp >= 1
        # the nearest neighbour on each side, compared first: the level the test assumes
        nearest = {id(f): (f, self._compare(g, grey, f, k, warped_too))
                   for f in (next((f for f in side if not same_frame(f, frame)), None)
                             for side in sides) if f is not None}
        if not nearest:
            return frame, None
        var = self._level(sigma, k, [d for _, d in nearest.values()])
        mean: np.ndarray | None = None  # (H, W, 3) float32, the weighted mean so far
        wsum = np.ones((h, w), np.float32)  # its weights' sum
        w2 = np.ones((h, w), np.float32)  # and their sum of squares
        for side in sides:
            last = frame
            for distance, other in enumerate(side, 1):
                if same_frame(other, last):  # a repeated frame: no new noise
                    continue
                last = other
                hit = nearest.get(id(other))
                d0, warped, d_w = hit[1] if hit is not None and hit[0] is other else \
                    self._compare(g, grey, other, k, flows and distance <= warp)
                z = motion_score(d0, 2 * var[0], p.window, 2 * var[1])
                taken = other
                if warped is not None and d_w is not None:
                    z_w = motion_score(d_w, 2 * var[0], p.window, 2 * var[1])
                    better = z_w + ZERO_MARGIN < z  # else the neighbour as it is fits as well
                    if better.all():
                        z, taken = z_w, warped
                    elif better.any():
                        z = np.where(better, z_w, z)
                        taken = other.copy()
                        cv2.copyTo(warped, cv2.resize(better.astype(np.uint8), (w, h),
                                                      interpolation=cv2.INTER_NEAREST), taken)
                static = np.clip((z - p.hi) / (p.lo - p.hi), 0, 1)
                static[z < FROZEN] = 0  # the same noise: nothing new to average
                static = cv2.erode(static, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REFLECT)
                if float((static == 0).mean()) > p.cut:  # a cut (or a copy): nothing beyond it
                    break
                wp = cv2.resize(static, (w, h), interpolation=cv2.INTER_LINEAR)
                if mean is None:
                    mean = np.asarray(frame, np.float32)
                mean = cv2.blendLinear(mean, np.asarray(taken, np.float32), wsum, wp)
                wsum += wp
                w2 += wp * wp
                self.last_used += 1
        if mean is None:
            return frame, None
        return cv2.convertScaleAbs(mean), np.sqrt(w2) / wsum


# after the window, a file job takes the still-camera smoothing's output while the camera reads
# still (``StillCameraFilter.scene_still``) and the window's frame as it is while it moves; the
# share of the smoothing's output moves by this much a frame, so a reading that flips (a still
# camera with a moving window in view) does not switch the whole picture at once (a pop):
# ``carphone`` 34.38 -> 34.43 dB, flicker 2.86 -> 2.81, the other suite clips within 0.02 dB
RAMP = 1 / 3


class StillShare:
    """``out = share(smoothed, frame, still)``: ``smoothed`` while the camera has read still
    for a few frames, ``frame`` while it moves, a blend of the two (rounded) in between."""

    def __init__(self) -> None:
        self.share = 0.0

    def reset(self) -> None:
        self.share = 0.0

    def __call__(self, smoothed: np.ndarray, frame: np.ndarray, still: bool) -> np.ndarray:
        step = (1.0 if still else 0.0) - self.share  # towards the target, never past it
        self.share += max(-RAMP, min(RAMP, step))
        if self.share > 1 - 1e-6:
            return smoothed
        if self.share < 1e-6:
            return frame
        return cv2.addWeighted(smoothed, self.share, frame, 1 - self.share, 0)

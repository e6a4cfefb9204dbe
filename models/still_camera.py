"""The ``--temporal auto`` smoothing: averaging along the motion, long where the camera is still.

``StillCameraFilter`` runs after a per-frame denoiser: it tests what changed on the noisy input,
follows the camera's motion with optical flow and averages the denoised frames where nothing
changed; ``models.input_average.InputAverage`` runs before the denoiser on a still camera,
with the same test.  OpenCV on the CPU; shared by ``stream.temporal`` (the pipeline stage)
and ``models.lab.eval_video`` (measurement).
"""
from __future__ import annotations

import collections
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .cell_noise import CAP, GREY, READINGS, Reading, lowest, read_differences, test_vars
from .pan_tracker import PanTracker


@dataclass(frozen=True)
class StillParams:
    long: float = 16.0  # most frames averaged per pixel while the camera is still
    short: float = 4.0  # ... while it moves (pans, handheld), along the motion
    pan: float = 0.2  # px a frame (smoothed) of the tiles' shift, or of the median flow length,
    #                   over which the camera moves (and the averages are warped along the flow)
    # the motion test runs on cells of scale x scale pixels; 0: by the frame's size
    # (``cell_scale``), so a 720p or 1080p frame costs what a 640x360 one does
    scale: int = 0
    window: int = 5  # cells a test statistic is averaged over (window x window)
    lo: float = 1.3  # mean squared difference, in units of what noise alone gives, at or
    hi: float = 2.2  # below which a cell is static / at or above which it moved
    cut: float = 0.6  # share of moved cells that resets the whole frame
    residual: float = 0.25  # denoiser's residual noise / sigma (only when no noisy input)
    # the noisy inputs are averaged before the denoiser only while the median flow vector
    # (smoothed) stays under this many px a frame (``InputAverage``)
    average_pan: float = 0.5


_SUM3 = np.ones((1, 3), np.float32)
GUARD = 1.5  # the noise level used is at most this many times the robust reading
# on a still camera a cell takes the warped average only when it explains the new frame this
# much better (in units of what noise alone gives) than the average as it is
MARGIN = 0.5
# a cell fits one average better than the other only by this much (in the same units)
TIE = 0.25
# the camera moves when the flow explains more than this share of the cells clearly better
EXPLAINS = 0.25
FLOW_PAN = 0.5  # px a frame of the median flow vector (smoothed) that reads as a pan
# after this many frames in a row that started over (a fast pan the flow cannot follow, or
# noise so light that every warp's error reads as motion), the motion is read on every other
# frame only, and the frames between start over at once: the reading costs 10 to 12 ms a
# 640x360 frame on the core that also decodes and encodes, and bought nothing there
RETRY_AFTER = 3
FLOW_WIDTH = 160  # px: the optical flow's finest level is at least this wide


def cell_scale(h: int, w: int) -> int:
    """Pixels per cell side for a frame of h x w: 2 up to 719 lines (the size the thresholds
    were set at: 176x144 to 854x480), then 2 per 360 lines of the shorter side (4 at 720p, 6 at
    1080p), so the cells, the flow and the tests cost what they do at 640x360 and see the
    same share of the picture per cell."""
    return 2 * max(1, min(h, w) // 360)


def motion_score(d: np.ndarray, noise_var: np.ndarray | float, window: int,
                 grey_var: np.ndarray | float) -> np.ndarray:
    """Per cell, how far the difference ``d`` (h, w, 3) between new cells and their running
    average exceeds what noise alone (variance ``noise_var`` per channel, ``grey_var`` for
    their mean: a third of it for noise independent across the channels; ``test_vars``) gives:
    the mean squared difference over ``window`` x ``window`` cells, of the brightness and of
    the three channels (a change of colour at the same brightness is motion too), the larger
    of the two, in units of the noise (about 1 where nothing moved)."""
    dy = cv2.transform(d, GREY)  # (h, w)
    d2 = cv2.transform(d * d, _SUM3)  # (h, w), noise var * 3
    box = (window, window)
    return np.maximum(cv2.blur(dy * dy / grey_var, box, borderType=cv2.BORDER_REFLECT),
                      cv2.blur(d2 / (3 * noise_var), box, borderType=cv2.BORDER_REFLECT))


def cells(img: np.ndarray, k: int) -> np.ndarray:
    """Means over k x k cells, float32: (h, w, 3) (or (h, w) for a grey image)."""
    h, w = img.shape[:2]
    return cv2.resize(np.asarray(img, np.float32), (max(w // k, 1), max(h // k, 1)),
                      interpolation=cv2.INTER_AREA)


def grey_cells(img: np.ndarray, k: int) -> np.ndarray:
    """The grey (channel mean) of ``cells``: what the optical flow reads, (h, w) float32."""
    return cv2.transform(cells(img, k), GREY)


def cell_flow(dis: cv2.DISOpticalFlow, grey: np.ndarray, last: np.ndarray) -> np.ndarray:
    """DIS optical flow from the grey cells ``grey`` to ``last`` (new(x) ~ last(x + flow(x))),
    (h, w, 2) in cells; the preset's finest level is a quarter of its input, which smears a
    small frame's flow, so it is set for a finest level at least ``FLOW_WIDTH`` wide."""
    dis.setFinestScale(int(np.clip(np.log2(grey.shape[1] / FLOW_WIDTH), 0, 2)))
    return dis.calc(cv2.convertScaleAbs(grey), cv2.convertScaleAbs(last), None)


@functools.lru_cache(maxsize=4)
def pixel_grid(h: int, w: int) -> np.ndarray:
    """Pixel coordinates (h, w, 2) float32 (x, y): a flow plus this is a ``cv2.remap`` map."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([gx, gy])


class StillCameraFilter:
    """Recursive averaging after a per-frame denoiser, along the motion, long where the camera
    is still: ``out = filt(denoised, sigma, noisy)``, frames (H, W, 3) uint8, numpy only.

    Why not the 5x5 test of :class:`RecursiveFilter`: the denoiser's residual is spatially
    correlated (blotches a few pixels wide) and its level unknown, so differences between
    outputs misfire as motion on still pixels and ``strong`` found few pixels to average.
    Here the test runs on the *noisy input*, whose noise is white and of the level the model
    was told: 2 x 2 cell means per channel (noise std sigma / 2), against a running average
    of those cells; the mean squared difference over 5 x 5 cells, of the brightness and of
    the three channels (a change of colour at the same brightness is motion too; the larger
    of the two counts), in units of what the noise alone gives, says static (<= ``lo``) or
    moved (>= ``hi``), and moved cells spread to their neighbours.  Real camera noise is not
    white: its cells keep more of it, and their grey more than a third of the channels'
    variance, so where the cells' own noise, read from the differences (``read_differences``,
    the lowest of the last ``READINGS`` frames), is clearly above the white level and not
    above ``CAP`` times the level told, the test assumes the reading (``test_vars``).  The
    denoised frames are then averaged per pixel with the cells' weights: the mean of up to
    ``long`` denoised frames where nothing changed, the new frame at once where something did
    (no trails).

    Following the motion: dense optical flow (OpenCV DIS, ultrafast preset) from each frame's
    grey cells to the last one's, on the noisy input (on the denoised frames without one), its
    finest level at least ``FLOW_WIDTH`` px wide.  While its median length (smoothed) is over
    ``pan`` px a frame, the running averages (cells, counts, output; bicubic for the output)
    are also warped along it, and per cell the test keeps whichever of the two, warped or as
    it is, explains the new frame better; cells that came in over the frame's edge start
    over.  Warped cells average at most ``short`` frames (each warp blurs a little).

    Still camera: the tiles' pan reading of the denoised frames (``PanTracker``, one frame
    behind) finds no shift, the flow does not explain more than ``EXPLAINS`` of the cells
    clearly better than the unwarped average on equal terms (the warp's interpolation also
    averages noise), and on frames ``2 x FLOW_WIDTH`` px and wider the flow shows no pan of
    ``FLOW_PAN`` px a frame.  While it is still, unwarped cells average up to ``long`` frames
    and a cell takes the warped average only when it fits better on those equal terms (by
    ``TIE``); on a smaller frame, where the noise or one moving object drags the coarse flow
    by a pixel or more, only by ``MARGIN`` at the robust noise level.  Most cells moved (a
    cut, a fast pan the flow missed) restarts the average.  The noise level used is at most
    ``GUARD`` times a robust reading from the differences, so a level set far too high
    (``--strength 3``) cannot blend across motion.  Without a noisy input (``noisy=None``)
    the test runs on the denoised frames, assuming ``residual * sigma`` capped by the robust
    reading.

    Everything but the final blend is :meth:`follow`, which the stream runs on a worker
    thread beside the engine: on a pan of the sample at 640x360 about 10 to 12 ms there, and
    0.7 ms after the engine.
    """

    def __init__(self, params: StillParams | None = None) -> None:
        self.params = params or StillParams()
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.reset()

    def reset(self) -> None:
        self.prev: np.ndarray | None = None  # (H, W, 3) float32 running average of outputs
        self.cells: np.ndarray | None = None  # (h, w, 3) float32 running average of the cells
        self.count: np.ndarray | None = None  # (h, w) frames averaged per cell
        self.last_grey: np.ndarray | None = None  # the previous frame's grey cells, for the flow
        self.k = self.params.scale or 2  # pixels per cell side, set per frame size in follow()
        self._tiles = PanTracker(self.params.pan, self.k)  # reads the denoised frames
        self.flow_speed = 0.0  # smoothed median length of the flow, px a frame
        self.flow_shift = 0.0  # smoothed length of the median flow vector, px a frame
        self.resets = 0
        self._readings: collections.deque[Reading] = collections.deque(maxlen=READINGS)
        self.failed = 0  # frames in a row that started over
        self.last_static = 0.0  # share of cells blended in the last frame
        self.last_warped = 0.0  # share of cells that took the warped average
        # share of cells the flow explains clearly better (on equal terms; 0 unless they
        # clearly outnumber those it explains worse)
        self.flow_explains = 0.0
        self.still_camera = False
        # the camera moved at the last frame (or most cells moved: a fast pan or a cut); what
        # ``--temporal auto`` uses to feed a recurrent twin its previous output
        self.camera_moving = False
        # what :meth:`follow` found for the next frame: the running average's weight per cell
        # (None: start over), the frame's cells and their grey
        self._pending: tuple[np.ndarray | None, np.ndarray, np.ndarray] | None = None
        self._untracked: np.ndarray | None = None  # the last output, for the tiles

    def __call__(self, frame: np.ndarray, sigma: float, noisy: np.ndarray | None = None) -> np.ndarray:
        out = self.step_np(np.array(frame, np.float32, order="C"), float(sigma), noisy)  # ours to keep
        return cv2.convertScaleAbs(out)  # rounded to nearest, saturated: 0..255 uint8

    def _cells(self, img: np.ndarray) -> np.ndarray:
        return cells(img, self.k)

    def step_np(self, y: np.ndarray, sigma: float, noisy: np.ndarray | None = None) -> np.ndarray:
        """One denoised frame (H, W, 3) float32 in 0..255 (and the noisy input it came from,
        same shape, any dtype) -> filtered (H, W, 3) float32.  ``y`` is kept as the running
        average when the sequence starts over (no copy): the caller hands it over."""
        if noisy is not None and np.shape(noisy) != y.shape:
            raise ValueError(f"expected the noisy input in the frame's shape {y.shape}, "
                             f"got {np.shape(noisy)}")
        if self._pending is None:
            self.follow(y if noisy is None else noisy, sigma, white=noisy is not None)
        assert self._pending is not None
        weight, g, grey = self._pending
        self._pending = None
        self._untracked = y  # the tiles read it at the next frame
        if weight is None:
            return self._start(y, g, grey)
        w_px = cv2.resize(weight, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = cv2.blendLinear(self.prev, y, w_px, 1 - w_px)
        self.prev = out
        return out

    @property
    def speed(self) -> float:
        """The camera's pan read by the tiles (smoothed), px a frame."""
        return self._tiles.speed

    @property
    def scene_still(self) -> bool:
        """Whether the camera read still at the last frame, by the tiles and by the flow (no
        pan of ``average_pan`` px a frame or more): when ``--temporal auto`` averages the
        noisy inputs of the next frame before the denoiser (``InputAverage``)."""
        return (self.prev is not None and self.still_camera and not self.camera_moving
                and self.flow_shift < self.params.average_pan)

    def follow(self, src: np.ndarray, sigma: float, white: bool = True) -> None:
        """Everything but the final blend, from the frame ``src`` (the noisy input; the
        denoised frame without one, ``white=False``): the camera's motion, the running
        averages warped along it, the test and the weights.  The stage calls it with the
        noisy input *before* the denoiser runs (on another thread, so it overlaps the
        inference); :meth:`step_np` calls it itself when it was not."""
        p = self.params
        self.k = self._tiles.scale = p.scale or cell_scale(*src.shape[:2])
        g = self._cells(src)  # (h, w, 3) cells of the frame the test reads
        grey = cv2.transform(g, GREY)  # (h, w) for the flow (``grey_cells``)
        if self._untracked is not None:  # the tiles, one frame behind: the last two outputs
            self.still_camera = self._tiles.update(cv2.transform(self._cells(self._untracked), GREY),
                                                   self.still_camera)
            self._untracked = None
        if self.prev is None or self.prev.shape[:2] != src.shape[:2] \
                or self.last_grey is None or self.last_grey.shape != grey.shape:
            if self.prev is not None:
                self.resets += 1
            self._pending = (None, g, grey)
            self.camera_moving = False
            return
        if self.failed >= RETRY_AFTER and (self.failed - RETRY_AFTER) % 2 == 0:
            self.resets += 1
            self.failed += 1
            self._pending = (None, g, grey)
            self.camera_moving = True
            return
        moved = self._follow_camera(grey)
        read = self._read_noise(g, moved) if white else None
        z = self._test(g, self.cells, self.count, sigma, white, read=read)
        warped = None
        if moved is not None:
            cells_w, count_w, where, shrink = moved
            # the camera keeps moving while the flow explained most of the last frame (the
            # tiles' reading of a steady pan comes and goes)
            # or while the median flow vector shows a pan (the noise drags single vectors every
            # way, but not their median that far; on a frame under 2 x FLOW_WIDTH px one moving
            # object drags the whole coarse flow, so there it does not count)
            pan = max(self.flow_shift, self.flow_speed) >= FLOW_PAN and grey.shape[1] >= FLOW_WIDTH
            still = self.still_camera = (self.still_camera and self.flow_explains <= EXPLAINS
                                         and not pan)
            # on a still camera a small frame's flow is smeared by the noise and by any moving
            # object: a cell takes the warped average only when it fits clearly better there
            wary = still and grey.shape[1] < FLOW_WIDTH
            guard = 1.0 if wary else GUARD
            z_w = self._test(g, cells_w, count_w, sigma, white, guard=guard, read=read)
            # whether the flow explains the frame, on equal terms: the warp's interpolation
            # also averages the noise of the running average, which alone lowers z_w
            z_fair = self._test(g, cells_w, count_w, sigma, white, guard=guard, shrink=shrink,
                                read=read)
            better, worse = float((z_fair < z - TIE).mean()), float((z < z_fair - TIE).mean())
            self.flow_explains = better if better > 2 * worse else 0.0
            if self.flow_explains > EXPLAINS:  # much of the frame moved along the flow
                self.still_camera = False
            if wary:
                warped = z_w < z - MARGIN
            elif still:  # on equal terms: the interpolation's averaging alone must not win
                warped = z_fair < z - TIE
            else:
                warped = z_w < z
            z = np.where(warped, z_w, z)
            self.cells = np.where(warped[..., None], cells_w, self.cells)
            self.count = np.where(warped, count_w, self.count)
            self.last_warped = float(warped.mean())
        else:
            self.last_warped = self.flow_explains = 0.0
        still = np.clip((z - p.hi) / (p.lo - p.hi), 0, 1)
        still = cv2.erode(still, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REFLECT)
        if float((still == 0).mean()) > p.cut:  # a cut, or a fast pan the flow missed
            self.resets += 1
            self.failed += 1
            self._pending = (None, g, grey)
            self.camera_moving = True
            return
        self.failed = 0
        self.camera_moving = not self.still_camera
        n_eff = still * self.count
        weight = n_eff / (n_eff + 1)  # of the running average, per cell
        self.cells = g + (self.cells - g) * weight[..., None]
        cap = np.float32(p.long if self.still_camera else p.short)
        if warped is not None:
            cap = np.where(warped, np.float32(p.short), cap)
        self.count = np.minimum(n_eff + 1, cap)
        self.last_static = float((still > 0).mean())
        if warped is not None and self.last_warped > 0:  # the output's average, warped there
            h, w = src.shape[:2]
            pick = cv2.resize(warped.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.copyTo(cv2.remap(self.prev, where, None, cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_REPLICATE), pick, self.prev)
        self._pending = (weight, g, grey)

    def _read_noise(self, g: np.ndarray, moved: tuple[np.ndarray, ...] | None) -> Reading:
        """The cells' own noise (``read_differences``) from their differences to the running
        average, and where the camera moved to its warp, the lower of the two (so a pan does
        not read as noise), per frame of the running average's noise added; the lowest of the
        last ``READINGS`` frames' (a cut, one frame, does not read as noise); std per channel
        and of the grey."""
        assert self.cells is not None and self.count is not None
        scale = math.sqrt(1 + float((1 / self.count).mean()))
        read = read_differences(g - self.cells)
        if moved is not None:
            read = lowest([read, read_differences(g - moved[0])])
        self._readings.append(lowest([read], scale))
        return lowest(self._readings)

    def _test(self, g: np.ndarray, cells: np.ndarray, count: np.ndarray, sigma: float,
              white: bool, guard: float = GUARD, shrink: np.ndarray | float = 1.0,
              read: Reading | None = None) -> np.ndarray:
        """Per cell, the mean squared difference between the new cells ``g`` and a running
        average of them, over ``window`` x ``window`` cells, in units of what noise alone gives
        (brightness and colour, the larger); ``read``: the cells' own noise read from the
        frame (``test_vars``), where it is above the white level of ``sigma``."""
        p = self.params
        d = g - cells  # (h, w, 3)
        # the running average's own noise adds to the new frame's (``shrink``: what a warp's
        # interpolation left of it)
        var_scale = 1 + shrink / count
        # robust reading: the median |d| is 0.6745 std where most cells are still; where most
        # moved it is large and the prior decides.  A sparse grid of cells reads it as well.
        grid = np.abs(d[::3, ::3]).ravel()
        k = (grid.size - 1) // 2
        robust = float(np.partition(grid, k)[k]) / 0.6745 / math.sqrt(float(var_scale.mean()))
        prior = sigma / self.k if white else p.residual * sigma  # white: mean of scale² pixels
        std = max(min(prior, guard * robust), 0.5)
        var, grey_var = test_vars(std, read, CAP * sigma)
        return motion_score(d, var_scale * var, p.window, var_scale * grey_var)

    def _follow_camera(self, grey: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """The flow between the grey cells of the last two denoised frames; while it says the
        scene moves, the running averages of the cells and counts warped onto the new frame,
        the map that warps the output's (where each pixel was), and what the interpolation
        left of the cells' noise variance."""
        assert self.prev is not None and self.cells is not None and self.count is not None
        p = self.params
        prev, self.last_grey = self.last_grey, grey
        h, w = grey.shape
        if min(h, w) < 16:  # too small for the flow's patches: a still scene
            self.flow_speed = self.flow_shift = 0.0
            return None
        flow = cell_flow(self._flow, grey, prev)
        length = cv2.magnitude(flow[::2, ::2, 0].copy(), flow[::2, ::2, 1].copy())
        self.flow_speed = 0.5 * self.flow_speed + 0.5 * float(np.median(length)) * self.k
        # the median flow vector: a pan's shift; the noise drags the flow every way, so on a
        # still scene it stays near zero while the median length does not
        shift = float(np.hypot(*np.median(flow[::2, ::2].reshape(-1, 2), axis=0))) * self.k
        self.flow_shift = 0.5 * self.flow_shift + 0.5 * shift
        if self.flow_speed < p.pan:
            return None
        H, W = self.prev.shape[:2]
        full = cv2.resize(flow, (W, H), interpolation=cv2.INTER_LINEAR)
        full *= self.k
        full += pixel_grid(H, W)  # where each pixel was (the output's average is warped by
        # ``follow`` only where a cell takes it, and not when the frame starts over)
        flow += pixel_grid(h, w)  # where each cell was
        cells = cv2.remap(self.cells, flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        count = cv2.remap(self.count, flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # what came in over the frame's edge has no history
        mx, my = flow[..., 0], flow[..., 1]
        count[(mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)] = 1.0
        # bilinear interpolation between cells averages their noise too: at a fractional
        # offset f its variance falls to (1 - f)² + f² per axis
        fx, fy = mx - np.floor(mx), my - np.floor(my)
        shrink = ((1 - fx) ** 2 + fx ** 2) * ((1 - fy) ** 2 + fy ** 2)
        return cells, np.maximum(count, 1.0), full, shrink

    def _start(self, y: np.ndarray, g: np.ndarray, grey: np.ndarray) -> np.ndarray:
        self.prev = y
        self.cells = g
        self.last_grey = grey
        self._tiles.reset()
        self.count = np.ones(g.shape[:2], np.float32)
        self.flow_speed, self.flow_shift = 0.0, 0.0
        self.still_camera, self.last_static = True, 0.0
        return y

"""Motion-adaptive recursive filter: the math of the temporal smoothing stage.

It runs after a per-frame denoiser.  Per pixel it keeps a running average of the frames in
which that pixel did not change (up to ``max_frames``), like a Kalman filter with a motion
detector: where the difference from the previous output is explained by the residual noise
of the denoiser it blends, where something moved it keeps the new frame and starts over.

Motion test: the mean absolute difference (over channels and a small window) between the new
frame and the previous output, divided by what residual noise alone would give.  The residual
noise level comes from the frame's noise level (``residual * sigma``) and is capped by a
robust estimate from the frame itself (the median absolute difference), so a denoiser that
leaves less noise than assumed is not blurred across motion.  A frame where most pixels moved
(a cut, a pan) resets the average.

What ``--temporal auto`` runs (``models.still_camera``: ``StillCameraFilter`` and
``InputAverage``) tests motion on the *noisy input* instead, follows the camera's motion and
averages long where the camera is still; see there.

Shared by ``stream.temporal`` (the pipeline stage) and ``models.lab.eval_video`` (measurement),
since ``models`` may not import ``stream``.  Torch tensors (CPU or CUDA) go through torch ops;
numpy frames through the same math in OpenCV, which is about 5x faster on a CPU (a 640x360
frame in a few ms, against about 30 ms single-threaded in torch) -- it matters on the live path.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .threads import one_torch_thread


@dataclass(frozen=True)
class FilterParams:
    max_frames: float  # most frames averaged per pixel
    lo: float  # motion score at or below which a pixel counts as static
    hi: float  # motion score at or above which it counts as moved
    # assumed residual noise of the denoiser, as a fraction of sigma: about what the trained
    # base leaves (6.9 levels at sigma 20 on DAVIS bus); larger values blend across slow motion
    residual: float = 0.25
    window: int = 5  # side of the window the absolute difference is averaged over
    cut: float = 0.6  # share of moved pixels that resets the whole frame


MODES: dict[str, FilterParams] = {
    "light": FilterParams(max_frames=3.0, lo=1.15, hi=1.6),
    "strong": FilterParams(max_frames=8.0, lo=1.3, hi=2.0),
}

_HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)  # E|x| for x ~ N(0, 1)


@functools.lru_cache(maxsize=4)
def _inside(shape: tuple[int, ...], window: int) -> np.ndarray:
    """How many pixels of a ``window`` x ``window`` box centred on each pixel lie inside."""
    ones = np.ones(shape, np.float32)
    return cv2.boxFilter(ones, -1, (window, window), borderType=cv2.BORDER_CONSTANT, normalize=False)


class RecursiveFilter:
    """Stateful filter over one sequence of frames: ``out = filt(frame, sigma)``.

    Frames are (H, W, 3) uint8, numpy or torch (any device); the result has the same type
    and device.  ``sigma`` is the noise level of the *input* to the denoiser (0..255).
    A size change or :meth:`reset` starts over.
    """

    def __init__(self, params: FilterParams | str = "light") -> None:
        self.params = MODES[params] if isinstance(params, str) else params
        self.reset()

    def reset(self) -> None:
        # running average: (3, H, W) float32 tensor, or (H, W, 3) float32 array (numpy path)
        self.prev: torch.Tensor | np.ndarray | None = None
        self.count: torch.Tensor | np.ndarray | None = None  # frames averaged per pixel
        self.resets = 0  # cuts and size changes seen (for tests and logs)
        self.last_static = 0.0  # share of pixels blended in the last frame

    def __call__(self, frame: np.ndarray | torch.Tensor, sigma: float) -> np.ndarray | torch.Tensor:
        if isinstance(frame, np.ndarray):
            out = self.step_np(np.asarray(frame, np.float32), float(sigma))
            return np.clip(np.rint(out), np.float32(0), np.float32(255)).astype(np.uint8)
        with one_torch_thread(frame.device.type == "cpu"):
            y = frame.permute(2, 0, 1).float()  # (3, H, W) in 0..255
            out = self.step(y, float(sigma))
            return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()

    @torch.no_grad()
    def step(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """One frame (3, H, W) float in 0..255 -> filtered (3, H, W) float."""
        p = self.params
        if (not isinstance(self.prev, torch.Tensor) or self.prev.shape != y.shape
                or self.prev.device != y.device):
            if self.prev is not None:
                self.resets += 1
            return self._start(y)
        n = self.count
        d = self.prev - y  # (3, H, W)
        ad = d.abs().mean(0, keepdim=True)  # (1, H, W)
        # noise std of one pixel of d if nothing moved: residual of y plus that of the average
        prior = (1 / n).add_(1).sqrt_().mul_(max(p.residual * sigma, 0.5))  # (1, H, W)
        # the median over the frame of the 3-channel mean |d| is about 0.75 std when most of
        # the frame is still; when most moved it is large and the prior decides.  A sparse
        # grid of pixels estimates it as well as all of them.
        robust = max(float(ad[:, ::4, ::4].median()) / 0.75, 0.5)
        sd = prior.clamp_max_(robust).mul_(_HALF_NORMAL_MEAN)
        local = F.avg_pool2d(ad[None], p.window, 1, p.window // 2, count_include_pad=False)[0]
        # 1 static .. 0 moved, from the local mean |d| in units of what noise alone gives
        still = local.div_(sd).sub_(p.hi).div_(p.lo - p.hi).clamp_(0, 1)
        moved_share = float((still == 0).float().mean())
        if moved_share > p.cut:
            self.resets += 1
            return self._start(y)
        n_eff = still * n
        w = n_eff / (n_eff + 1)  # weight of the running average
        out = d.mul_(w).add_(y)  # y + w * (prev - y)
        self.prev = out
        self.count = n_eff.add_(1).clamp_max_(p.max_frames)
        self.last_static = float((still > 0).float().mean())
        return out

    def _start(self, y: torch.Tensor) -> torch.Tensor:
        self.prev = y.clone()
        self.count = torch.ones_like(y[:1])
        self.last_static = 0.0
        return y

    def step_np(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """:meth:`step` for an (H, W, 3) float32 array in 0..255, in OpenCV and numpy."""
        p = self.params
        if not isinstance(self.prev, np.ndarray) or self.prev.shape != y.shape:
            if self.prev is not None:
                self.resets += 1
            return self._start_np(y)
        n = self.count
        ad = cv2.transform(cv2.absdiff(self.prev, y), np.full((1, 3), 1 / 3, np.float32))  # (H, W)
        prior = np.sqrt(1 + 1 / n) * max(p.residual * sigma, 0.5)
        grid = ad[::4, ::4].ravel()
        k = (grid.size - 1) // 2  # the lower median, as torch.median takes it
        robust = max(float(np.partition(grid, k)[k]) / 0.75, 0.5)
        sd = np.minimum(prior, robust) * _HALF_NORMAL_MEAN
        # window mean over the pixels inside the frame (avg_pool2d, count_include_pad=False)
        box = (p.window, p.window)
        local = cv2.boxFilter(ad, -1, box, borderType=cv2.BORDER_CONSTANT, normalize=False)
        still = np.clip((local / _inside(ad.shape, p.window) / sd - p.hi) / (p.lo - p.hi), 0, 1)
        if float((still == 0).mean()) > p.cut:
            self.resets += 1
            return self._start_np(y)
        n_eff = still * n
        w = n_eff / (n_eff + 1)  # weight of the running average
        out = cv2.blendLinear(self.prev, y, w, 1 - w)  # per-pixel weights over 3 channels
        self.prev = out
        self.count = np.minimum(n_eff + 1, p.max_frames)
        self.last_static = float((still > 0).mean())
        return out

    def _start_np(self, y: np.ndarray) -> np.ndarray:
        self.prev = y.copy()
        self.count = np.ones(y.shape[:2], np.float32)
        self.last_static = 0.0
        return y

"""The ways ``python -m models eval-video`` denoises a clip: a per-frame or recurrent model frame
by frame, ``--temporal auto`` as the processor runs it, a twin with the smoothing, the smoothing
alone, and OpenCV's multi-frame NLM."""
from __future__ import annotations

import numpy as np
import torch

from ..input_average import InputAverage
from ..still_camera import StillCameraFilter
from ..temporal_filter import RecursiveFilter


def run_model(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float, device: torch.device,
              recurrent: bool) -> list[np.ndarray]:
    """Denoise a sequence; a recurrent model gets its previous 8-bit output as ``prev``."""
    outs: list[np.ndarray] = []
    prev: torch.Tensor | None = None
    with torch.inference_mode():
        for img in noisy:
            x = torch.from_numpy(img).to(device).permute(2, 0, 1)[None].float() / 255
            smap = torch.full_like(x[:, :1], sigma / 255)
            if prev is not None and prev.shape != x.shape:
                prev = None
            y = model(x, smap, prev) if recurrent else model(x, smap)
            y8 = (y.clamp(0, 1) * 255).round()
            if recurrent:
                prev = y8 / 255
            outs.append(y8[0].permute(1, 2, 0).byte().cpu().numpy())
    return outs


def run_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
             device: torch.device) -> list[np.ndarray]:
    """A per-frame model with ``--temporal auto`` as the product's processor runs it: on a
    still camera (as the smoothing read it at the frame before) the model gets the noisy
    inputs averaged over time with their per-pixel noise level (``InputAverage``), and the
    still-camera smoothing follows it."""
    filt, average = StillCameraFilter(), InputAverage()
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for img in noisy:
            x8, scale = average(img, sigma, filt.scene_still)
            x = torch.from_numpy(np.ascontiguousarray(x8)).to(device).permute(2, 0, 1)[None].float() / 255
            smap = (torch.from_numpy(scale * np.float32(sigma / 255))[None, None].to(device)
                    if average.last_static > 0 else torch.full_like(x[:, :1], sigma / 255))
            y8 = (model(x, smap).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).byte().cpu().numpy()
            outs.append(filt(y8, sigma, img))
    return outs


def run_twin_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
                  device: torch.device, switch: bool = True,
                  feed_smoothed: bool = False) -> list[np.ndarray]:
    """A recurrent twin with the ``auto`` (still-camera) smoothing after it, run frame by frame
    as the product's processor runs them.  ``switch``: the twin gets its previous output only
    while the smoothing reads the camera as moving (``StillCameraFilter.camera_moving`` at
    the frame before), so on a still camera it denoises frame by frame and the smoothing does
    the long averaging.  ``feed_smoothed``: the previous output fed back is the smoothed one."""
    filt = StillCameraFilter()
    outs: list[np.ndarray] = []
    prev: torch.Tensor | None = None
    with torch.inference_mode():
        for img in noisy:
            x = torch.from_numpy(img).to(device).permute(2, 0, 1)[None].float() / 255
            smap = torch.full_like(x[:, :1], sigma / 255)
            use = prev if (prev is not None and prev.shape == x.shape
                           and (not switch or filt.camera_moving)) else None
            y8 = (model(x, smap, use).clamp(0, 1) * 255).round()
            den = y8[0].permute(1, 2, 0).byte().cpu().numpy()
            sm = filt(den, sigma, img)
            prev = (torch.from_numpy(sm).to(device).permute(2, 0, 1)[None].float()
                    if feed_smoothed else y8) / 255
            outs.append(sm)
    return outs


def smooth(frames: list[np.ndarray], sigma: float, mode: str, device: torch.device,
           noisy: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The stream's smoothing over denoised ``frames``; ``auto`` also reads the ``noisy``
    inputs they came from, as the stage reads ``Frame.original``."""
    if mode == "auto":
        filt_auto = StillCameraFilter()
        return [filt_auto(f, sigma, None if noisy is None else noisy[i])
                for i, f in enumerate(frames)]
    filt = RecursiveFilter(mode)
    out = []
    for f in frames:  # numpy on the CPU, as the stream's stage runs it; torch on a GPU
        out.append(filt(f, sigma) if device.type == "cpu"
                   else np.asarray(filt(torch.from_numpy(f).to(device), sigma).cpu()))
    return out


def nlm_multi(noisy: list[np.ndarray], sigma: float, window: int = 5) -> list[np.ndarray]:
    import cv2

    h = max(3.0, 0.6 * sigma)
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in noisy]
    n, half = len(noisy), window // 2
    out = []
    for i in range(n):
        # frames i-2..i+2, mirrored at the ends (OpenCV wants the whole window to exist)
        idx = [abs(j) if j < n else 2 * (n - 1) - j for j in range(i - half, i + half + 1)]
        srcs = [bgr[min(max(j, 0), n - 1)] for j in idx]
        den = cv2.fastNlMeansDenoisingColoredMulti(srcs, half, 2 * half + 1, None, h, h, 7, 21)
        out.append(np.ascontiguousarray(den[..., ::-1]))
    return out

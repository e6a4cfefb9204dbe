"""The ways ``python -m models eval-video`` denoises a clip: a per-frame or recurrent model frame
by frame, ``--temporal auto`` as the processor runs it, a twin with the smoothing, the smoothing
alone, and OpenCV's multi-frame NLM."""
from __future__ import annotations

import numpy as np
import torch

from ..align import FlowAligner
from ..input_average import InputAverage
from ..still_camera import StillCameraFilter
from ..temporal_filter import RecursiveFilter
from ..wiener import second_pass
from ..window_average import PAST, StillShare, WindowAverage


def _tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """An (H, W, 3) uint8 frame as the (1, 3, H, W) float tensor in 0..1 a model takes."""
    return torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1)[None].float() / 255


def _frame(y8: torch.Tensor) -> np.ndarray:
    """A model's (1, 3, H, W) output, rounded to 0..255, as an (H, W, 3) uint8 frame."""
    return y8[0].permute(1, 2, 0).byte().cpu().numpy()


def _denoise(model: torch.nn.Module, x: torch.Tensor, smap: torch.Tensor,
             prev: torch.Tensor | None = None, recurrent: bool = False) -> torch.Tensor:
    """The model's output rounded to 8-bit levels (still a float tensor in 0..255)."""
    y = model(x, smap, prev) if recurrent else model(x, smap)
    return (y.clamp(0, 1) * 255).round()


def run_model(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float, device: torch.device,
              recurrent: bool, aligned: bool = False, wiener: str | None = None) -> list[np.ndarray]:
    """Denoise a sequence; a recurrent model gets its previous 8-bit output as ``prev``
    (``aligned``: warped onto the frame along the flow, as the processor does); ``wiener``:
    the model's name, for the Wiener pass after it (a per-frame model in a file job)."""
    outs: list[np.ndarray] = []
    prev: torch.Tensor | None = None
    aligner = FlowAligner() if recurrent and aligned else None
    with torch.inference_mode():
        for img in noisy:
            x = _tensor(img, device)
            if prev is not None and prev.shape != x.shape:
                prev = None
            if aligner is not None:
                warped = aligner(img, outs[-1] if prev is not None else None)
                prev = None if warped is None else _tensor(warped, device)
            y8 = _denoise(model, x, torch.full_like(x[:, :1], sigma / 255), prev, recurrent)
            if recurrent:
                prev = y8 / 255
            outs.append(second_pass(wiener, img, _frame(y8), sigma))
    return outs


def run_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
             device: torch.device, wiener: str | None = None) -> list[np.ndarray]:
    """A per-frame model with ``--temporal auto`` as the product's processor runs it: on a
    still camera (as the smoothing read it at the frame before) the model gets the noisy
    inputs averaged over time with their per-pixel noise level (``InputAverage``), and the
    still-camera smoothing follows it."""
    filt, average = StillCameraFilter(), InputAverage()
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for img in noisy:
            x8, scale = average(img, sigma, filt.scene_still)
            x = _tensor(x8, device)
            smap = (torch.full_like(x[:, :1], sigma / 255) if scale is None
                    else torch.from_numpy(scale * np.float32(sigma / 255))[None, None].to(device))
            y = second_pass(wiener, x8, _frame(_denoise(model, x, smap)), sigma if scale is None else scale * sigma)
            outs.append(filt(y, sigma, img))
    return outs


def run_window(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
               device: torch.device, radius: int, wiener: str | None = None) -> list[np.ndarray]:
    """A per-frame model with ``--temporal auto`` as a file job runs it (``stream.lookahead``):
    each noisy input averaged with up to ``radius`` frames on each side along the motion,
    with its per-pixel noise level (``WindowAverage``); the still-camera smoothing after the
    model, its output taken while it reads a still camera (``StillShare``)."""
    filt, window, share = StillCameraFilter(), WindowAverage(), StillShare()
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for t, img in enumerate(noisy):
            before = noisy[max(0, t - max(radius, PAST)):t][::-1]
            x8, scale = window(img, before, noisy[t + 1:t + 1 + radius], sigma, radius)
            x = _tensor(x8, device)
            smap = (torch.full_like(x[:, :1], sigma / 255) if scale is None
                    else torch.from_numpy(scale * np.float32(sigma / 255))[None, None].to(device))
            y = second_pass(wiener, x8, _frame(_denoise(model, x, smap)), sigma if scale is None else scale * sigma)
            outs.append(share(filt(y, sigma, img), y, filt.scene_still))
    return outs


def run_twin_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
                  device: torch.device, switch: bool = True,
                  feed_smoothed: bool = False, aligned: bool = False) -> list[np.ndarray]:
    """A recurrent twin with the ``auto`` (still-camera) smoothing after it, run frame by frame
    as the product's processor runs them.  ``switch``: the twin gets its previous output only
    while the smoothing reads the camera as moving (``StillCameraFilter.camera_moving`` at
    the frame before), so on a still camera it denoises frame by frame and the smoothing does
    the long averaging.  ``feed_smoothed``: the previous output fed back is the smoothed one.
    ``aligned`` (a fusion twin): it is warped onto the frame along the flow first
    (``models.align``), and without one the twin, exactly its per-frame net, gets the inputs'
    mean on a still camera as ``run_auto`` does (the processor's order of steps)."""
    filt = StillCameraFilter()
    aligner = FlowAligner() if aligned else None
    average = InputAverage() if aligned else None
    outs: list[np.ndarray] = []
    prev: np.ndarray | None = None
    with torch.inference_mode():
        for img in noisy:
            use = prev if (prev is not None and prev.shape == img.shape
                           and (not switch or filt.camera_moving)) else None
            if aligner is not None:
                use = aligner(img, use)
            x8, scale = average(img, sigma, filt.scene_still) if average is not None else (img, None)
            if use is not None:
                x8, scale = img, None
            x = _tensor(x8, device)
            smap = (torch.full_like(x[:, :1], sigma / 255) if scale is None
                    else torch.from_numpy(scale * np.float32(sigma / 255))[None, None].to(device))
            y8 = _denoise(model, x, smap, None if use is None else _tensor(use, device), recurrent=True)
            sm = filt(_frame(y8), sigma, img)
            prev = sm if feed_smoothed else _frame(y8)
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

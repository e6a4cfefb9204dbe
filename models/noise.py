"""Noise synthesis for training and tests: what cameras put into low-light frames.

All functions work on batched float tensors (B, 3, H, W) in [0, 1] sRGB, on CPU or CUDA,
and return ``(noisy, sigma_map)`` where ``sigma_map`` (B, 1, H, W) is the true per-pixel noise
standard deviation in the same [0, 1] units: exactly what the denoiser is conditioned on.

- ``gaussian``: white Gaussian noise (the published-table protocol), optionally clipped and
  quantised to 8 bits as a saved file would be.
- ``camera``: signal-dependent Poisson-Gaussian noise added in linear light on a Bayer mosaic,
  bilinear demosaicking (which correlates the noise between neighbouring pixels; bilinear
  interpolation fills each channel from its own samples, so it adds no correlation between
  channels, and a camera's colour-correction matrix, which would, is not modelled), then the
  sRGB curve.  The map is propagated exactly through the demosaic weights and the curve's slope.
- ``jpeg``: JPEG compression of an already noisy frame (what webcams and phones ship).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def srgb_slope(lin: torch.Tensor) -> torch.Tensor:
    """d sRGB / d linear at ``lin``: converts a linear-light std to an sRGB std."""
    lin = lin.clamp(0, 1)
    return torch.where(lin <= 0.0031308, torch.full_like(lin, 12.92),
                       1.055 / 2.4 * lin.clamp_min(0.0031308) ** (1 / 2.4 - 1))


def gaussian(
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    clip: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """White Gaussian noise; ``sigma`` in [0, 1] units, scalar, per image (B,) or a map (B,1,H,W)."""
    b, _, h, w = x.shape
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.dim() <= 1:
        s = s.reshape(-1, 1, 1, 1).expand(b, 1, h, w)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy = x + noise * s
    if clip:
        noisy = torch.round(noisy.clamp(0, 1) * 255) / 255
    return noisy, s.contiguous()


# Bilinear demosaicking kernels for an RGGB mosaic (Malvar's bilinear baseline).
_K_G = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float32) / 4
_K_RB = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32) / 4


def _bayer_masks(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(1, 3, H, W) 0/1 masks of an RGGB pattern."""
    m = torch.zeros(1, 3, h, w, device=device)
    m[:, 0, 0::2, 0::2] = 1
    m[:, 1, 0::2, 1::2] = 1
    m[:, 1, 1::2, 0::2] = 1
    m[:, 2, 1::2, 1::2] = 1
    return m


def _demosaic(mosaic3: torch.Tensor, square: bool = False) -> torch.Tensor:
    """Bilinear interpolation of a masked (B,3,H,W) mosaic; ``square`` propagates variances."""
    k = torch.stack([_K_RB, _K_G, _K_RB]).unsqueeze(1).to(mosaic3)  # (3,1,3,3)
    if square:
        k = k * k
    return F.conv2d(F.pad(mosaic3, (1, 1, 1, 1), mode="reflect"), k, groups=3)


def camera(
    x: torch.Tensor,
    shot: torch.Tensor | float,
    read: torch.Tensor | float,
    mosaic: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson-Gaussian noise in linear light: var = shot * lin + read**2 (per image or scalar).

    The result is clipped to [0, 1] and quantised to 8 bits, like a camera's output.
    """
    _, _, h, w = x.shape
    shot_t = torch.as_tensor(shot, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    read_t = torch.as_tensor(read, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    lin = srgb_to_linear(x)
    var = shot_t * lin + read_t**2  # (B, 3, H, W)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if mosaic and h >= 2 and w >= 2:
        m = _bayer_masks(h, w, x.device).to(x.dtype)
        noisy_lin = _demosaic((lin + noise * var.sqrt()) * m)
        var = _demosaic(var * m, square=True)
    else:
        noisy_lin = lin + noise * var.sqrt()
    noisy = torch.round(linear_to_srgb(noisy_lin) * 255) / 255
    # Linearise the curve around the clean value: std_srgb = slope * std_lin, then one map
    # for all channels (root mean square), which is what the network is given.
    std = srgb_slope(lin) * var.sqrt()
    sigma_map = std.pow(2).mean(dim=1, keepdim=True).sqrt()
    return noisy, sigma_map


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip through OpenCV (CPU; returns a tensor on x's device)."""
    import cv2

    out = []
    for img in x.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec)))
    return torch.stack(out).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255


def noise_level_function(
    clean: np.ndarray, noisy: np.ndarray, bins: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Noise std (0..255) per brightness bin of the clean image: how noise grows with signal.

    ``clean``/``noisy``: (H, W, 3) uint8 or float in 0..255.  Returns (bin centres, std); bins
    with too few pixels are NaN.
    """
    c = np.asarray(clean, dtype=np.float64)
    d = np.asarray(noisy, dtype=np.float64) - c
    edges = np.linspace(0, 255, bins + 1)
    idx = np.clip(np.digitize(c, edges) - 1, 0, bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    std = np.full(bins, np.nan)
    for i in range(bins):
        sel = d[idx == i]
        if sel.size >= 200:
            std[i] = sel.std()
    return centres, std

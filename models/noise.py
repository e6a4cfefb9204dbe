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
- ``camera_isp``: a camera's whole pipeline run backwards and forwards (after Brooks et al.,
  "Unprocessing Images for Learned Raw Denoising", CVPR 2019): undo the tone curve, the sRGB
  gamma, the colour correction matrix and the white-balance gains; add shot and read noise on
  the raw Bayer mosaic (read noise tied to shot noise by the log-linear relation fitted there);
  demosaic (bilinear or OpenCV's edge-aware); redo gains, matrix, gamma and tone curve; then
  what phones and webcams do after that (chroma noise reduction, sharpening, JPEG).  The matrix
  mixes the channels' noise and the gains scale it unevenly, so unlike ``camera`` this noise
  is correlated across colours and coarser in space, as real camera noise is.
- ``coarse``: Gaussian noise made coarse and colour-correlated directly (a fine and a slower
  spatial scale, a shared part across the channels, brighter pixels noisier), at levels up to
  those of phones in low light; a generic stand-in for processed camera noise that takes
  nothing from any real camera's data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


def correlations(noise: np.ndarray, lags: tuple[int, ...] = (1, 2, 3)) -> dict[str, float]:
    """How structured a noise image (H, W, 3) is: its spatial autocorrelation at each lag
    (horizontal and vertical averaged, channels pooled) and the correlation between channels.
    White noise gives 0 everywhere; demosaicking raises the lags, colour matrices the pairs."""
    d = np.asarray(noise, dtype=np.float64)
    d = d - d.mean(axis=(0, 1))
    var = (d * d).mean()
    out = {}
    for k in lags:
        h = (d[:, k:] * d[:, :-k]).mean()
        v = (d[k:] * d[:-k]).mean()
        out[f"lag{k}"] = float((h + v) / 2 / var)
    std = d.std(axis=(0, 1))
    for (i, j), name in (((0, 1), "rg"), ((0, 2), "rb"), ((1, 2), "gb")):
        out[name] = float((d[..., i] * d[..., j]).mean() / (std[i] * std[j]))
    return out


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


# --- a camera pipeline, inverted and replayed (camera_isp) -----------------------------------

# Ranges per image, after Brooks et al. 2019 (white balance, brightness) and the spread of
# phone and webcam colour matrices (saturation boost: off-diagonal terms of -0.05..-0.6).
_RED_GAIN = (1.9, 2.4)
_BLUE_GAIN = (1.5, 1.9)
_SHOT = (1e-4, 2e-2)  # shot-noise gain of the raw signal (variance = shot * raw + read)


def _smoothstep_inverse(y: torch.Tensor) -> torch.Tensor:
    y = y.clamp(0, 1)
    return 0.5 - torch.sin(torch.asin((1 - 2 * y).clamp(-1, 1)) / 3)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return 3 * x * x - 2 * x * x * x


def _random_ccm(gen: torch.Generator) -> torch.Tensor:
    """A camera-to-sRGB matrix (3, 3) whose rows sum to 1 (greys stay grey)."""
    off = -(torch.rand(3, 3, generator=gen) * 0.55 + 0.05)
    off.fill_diagonal_(0)
    return off + torch.diag(1 - off.sum(1))


def _demosaic_ea(mosaic: torch.Tensor) -> torch.Tensor:
    """OpenCV's edge-aware demosaicking of an RGGB mosaic (H, W) in [0, 1] -> (3, H, W)."""
    import cv2

    raw = (mosaic.clamp(0, 1) * 65535).round().to(torch.int32).numpy().astype(np.uint16)
    rgb = cv2.cvtColor(raw, cv2.COLOR_BayerBG2RGB_EA)  # OpenCV names RGGB "BG"
    return torch.from_numpy(rgb.astype(np.float32) / 65535).permute(2, 0, 1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (C, H, W) with edge padding."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[0]
    y = F.conv2d(F.pad(x[None], (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0]


# RGB <-> YCbCr (BT.601, full range) for the chroma-only noise reduction of phones.
_TO_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.1687, -0.3313, 0.5], [0.5, -0.4187, -0.0813]])
_TO_RGB = torch.linalg.inv(_TO_YCC)


@dataclass(frozen=True)
class IspCamera:
    """One camera's pipeline settings for ``camera_isp``: drawn once per image, or once per
    video sequence so that every frame of it comes from the same camera."""

    ccm: torch.Tensor  # (3, 3) camera -> sRGB, rows sum to 1
    red_gain: float
    blue_gain: float
    bright: float  # 1 / the raw exposure gain
    shot: float  # shot-noise gain: variance = shot * raw + read
    read: float
    tone: bool  # a global tone curve (smoothstep) after the gamma
    edge_aware: bool  # OpenCV's edge-aware demosaicking, else bilinear
    chroma_nr: float  # std (px) of the chroma-only blur of the noise; 0 = none
    grain_nr: float  # share of the fine grain (all channels) smoothed away in camera; 0 = none
    grain_nr_px: float
    sharpen: float  # unsharp-mask amount; 0 = none


# How often phones and cameras do each step, and how hard (probability, then the range).
CHROMA_NR = (0.75, 1.0, 3.0)  # chroma-only blur std (px)
GRAIN_NR = (0.5, 0.0, 0.7, 0.7, 1.5)  # share of the grain blurred away, blur std (px)
SHARPEN = (0.25, 0.2, 0.8)  # unsharp-mask amount


def _lerp(lo: float, hi: float, t: float) -> float:
    return lo + t * (hi - lo)


def sample_isp(gen: torch.Generator, shot: tuple[float, float] = _SHOT) -> IspCamera:
    """Draw a camera (see ``IspCamera``) from the ranges above and Brooks et al.'s."""
    u = torch.rand(12, generator=gen).tolist()
    ccm = _random_ccm(gen)
    bright = max(0.5, 0.8 + 0.1 * float(torch.randn(1, generator=gen)))
    log_shot = math.log(shot[0]) + u[3] * (math.log(shot[1]) - math.log(shot[0]))
    log_read = 2.18 * log_shot + 1.2 + 0.26 * float(torch.randn(1, generator=gen))
    return IspCamera(
        ccm=ccm, red_gain=_lerp(*_RED_GAIN, u[1]), blue_gain=_lerp(*_BLUE_GAIN, u[2]), bright=bright,
        shot=math.exp(log_shot), read=math.exp(log_read), tone=u[0] < 0.5, edge_aware=u[4] < 0.5,
        chroma_nr=_lerp(*CHROMA_NR[1:], u[6]) if u[5] < CHROMA_NR[0] else 0.0,
        grain_nr=_lerp(*GRAIN_NR[1:3], u[8]) if u[7] < GRAIN_NR[0] else 0.0, grain_nr_px=_lerp(*GRAIN_NR[3:], u[11]),
        sharpen=_lerp(*SHARPEN[1:], u[10]) if u[9] < SHARPEN[0] else 0.0,
    )


def _isp_one(x: torch.Tensor, cam: IspCamera, gen: torch.Generator) -> torch.Tensor:
    """One clean sRGB image (3, H, W) through ``cam`` with fresh noise; 8-bit values in [0, 1]."""
    _, h, w = x.shape
    y = _smoothstep_inverse(x) if cam.tone else x
    lin = srgb_to_linear(y)
    cam_rgb = torch.einsum("ij,jhw->ihw", torch.linalg.inv(cam.ccm), lin)
    gains = torch.tensor([cam.red_gain, 1.0, cam.blue_gain]).view(3, 1, 1)
    raw = (cam_rgb / gains * cam.bright).clamp(0, 1)
    var = cam.shot * raw + cam.read
    mosaic_ok = h >= 2 and w >= 2
    m = _bayer_masks(h, w, x.device)[0].to(x.dtype) if mosaic_ok else torch.ones_like(raw)
    mosaic = ((raw + torch.randn(raw.shape, generator=gen) * var.sqrt()) * m).sum(0)  # (H, W)
    if not mosaic_ok:
        dem = mosaic[None].expand(3, -1, -1)
    elif cam.edge_aware:
        dem = _demosaic_ea(mosaic)
    else:
        dem = _demosaic(mosaic[None, None] * m[None])[0]
    cam_out = (dem / cam.bright * gains).clamp(0, 1)
    srgb = linear_to_srgb(torch.einsum("ij,jhw->ihw", cam.ccm, cam_out))
    n = (_smoothstep(srgb) if cam.tone else srgb) - x
    if cam.chroma_nr:  # chroma noise reduction: the noise left is mostly in luma, and coarse
        ycc = torch.einsum("ij,jhw->ihw", _TO_YCC, n)
        ycc[1:] = _blur(ycc[1:], cam.chroma_nr)
        n = torch.einsum("ij,jhw->ihw", _TO_RGB, ycc)
    if cam.grain_nr:  # in-camera denoising of the fine grain
        n = (1 - cam.grain_nr) * n + cam.grain_nr * _blur(n, cam.grain_nr_px)
    if cam.sharpen:  # sharpening (unsharp mask) boosts the noise's high frequencies
        n = n + cam.sharpen * (n - _blur(n, 1.2))
    return torch.round((x + n).clamp(0, 1) * 255) / 255


COARSE_LEVEL = (2.0, 45.0)  # noise std in 8-bit levels, drawn log-uniform
COARSE_BLUR = (0.5, 1.4)  # std (px) of the fine scale's blur
COARSE_SLOW = (2.0, 4.0, 0.6)  # std (px) of the slow scale's blur, and its largest weight
COARSE_SHARED = (0.3, 0.85)  # share of the variance common to the three channels


def coarse(x: torch.Tensor, gen: torch.Generator, jpeg_share: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Coarse, colour-correlated noise on clean sRGB ``x`` (B, 3, H, W), CPU, 8-bit rounded;
    the first ``jpeg_share`` of the batch JPEG'd at one random quality (60..95).  Returns
    (noisy, map): the map is each image's noise std, as ``camera_isp``'s is."""
    b, _, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        u = torch.rand(6, generator=gen).tolist()  # u[5] spare: the recorded runs drew six
        rho = _lerp(*COARSE_SHARED, u[0])
        white = torch.randn(4, h, w, generator=gen)
        n = math.sqrt(1 - rho) * white[:3] + math.sqrt(rho) * white[3:]
        fine = _blur(n, _lerp(*COARSE_BLUR, u[1]))
        slow = _blur(n, _lerp(*COARSE_SLOW[:2], u[2]))
        n = fine / fine.std() + COARSE_SLOW[2] * u[3] * slow / slow.std()
        lum = x[i].mean(0, keepdim=True)
        shape = (0.25 + lum).sqrt()  # shot noise: brighter is noisier
        level = math.exp(_lerp(math.log(COARSE_LEVEL[0]), math.log(COARSE_LEVEL[1]), u[4])) / 255
        n = n / n.std() * shape / shape.pow(2).mean().sqrt() * level
        out[i] = torch.round((x[i] + n).clamp(0, 1) * 255) / 255
    k = round(b * jpeg_share)
    if k:
        out[:k] = jpeg(out[:k], int(torch.randint(60, 96, (1,), generator=gen)))
    std = (out - x).pow(2).mean(dim=(1, 2, 3)).sqrt()
    return out, std.view(b, 1, 1, 1).expand(b, 1, h, w).contiguous()


def camera_isp(
    x: torch.Tensor, gen: torch.Generator, shot: tuple[float, float] = _SHOT, jpeg_share: float = 0.5,
    cams: list[IspCamera] | None = None, quality: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-camera-like noise on clean sRGB ``x`` (B, 3, H, W), CPU; see the module docstring.

    Each image gets its own camera from ``sample_isp`` unless ``cams`` gives one per image
    (e.g. the same camera for every frame of a sequence); the first ``jpeg_share`` of the batch
    is JPEG'd at ``quality`` (random 50..95 when None).  Returns (noisy 8-bit values in [0, 1],
    sigma map): the map is each image's noise std (root mean square of noisy - clean over the
    image and channels), the level a noise estimator reads from the frame, constant over it.
    """
    b, _, h, w = x.shape
    if cams is not None and len(cams) != b:
        raise ValueError(f"camera_isp: {len(cams)} cameras for a batch of {b}")
    out = torch.empty_like(x)
    for i in range(b):
        cam = cams[i] if cams is not None else sample_isp(gen, shot)
        out[i] = _isp_one(x[i], cam, gen)
    k = round(b * jpeg_share)
    if k:
        q = quality if quality is not None else int(torch.randint(50, 96, (1,), generator=gen))
        out[:k] = jpeg(out[:k], q)
    std = (out - x).pow(2).mean(dim=(1, 2, 3)).sqrt()  # (B,)
    return out, std.view(b, 1, 1, 1).expand(b, 1, h, w).contiguous()

"""A learned noise-level estimator: reads a frame's noise the way the denoisers were taught it.

The PCA estimator (``models.estimate``) measures the finest-grained part of the noise and needs
a hand-set correction for the coarse, colour-correlated noise of real cameras.  This small CNN
is trained on exactly the noise synthesis the denoisers are trained on (``models.lab.train``'s mix:
white, clipped, camera and replayed-camera-pipeline noise) to predict the noise map those
denoisers are given, so its reading is, by construction, the level they expect.

Per location (every 4 x 4 pixels) it predicts a log noise level and a confidence; a frame's
level is the confidence-weighted mean over a grid of crops (textured regions, where noise and
detail are hard to tell apart, learn low confidence, as weak-texture patch selection does by
hand).  It is trained with an asymmetric loss, after CBDNet (Guo et al., CVPR 2019): reading
too low costs more than reading too high, since a denoiser told too little leaves noise in.
Cost: 16 crops of 64 x 64, about 0.1 GMAC, whatever the frame size.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .threads import one_torch_thread

CROP = 64
CROPS = 16  # on a 4 x 4 grid
FLOOR = 0.25 / 255  # smallest level it reads (a clean frame), in [0, 1] units


class NoiseLevelNet(nn.Module):
    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, H, W) in [0, 1] -> (log sigma, confidence logit), each (B, 1, H/4, W/4)."""
        y = self.body(x - 0.5)
        return y[:, :1], y[:, 1:]

    def pooled(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """Level per group of ``B / groups`` consecutive crops, confidence-weighted: (groups,)."""
        if x.shape[0] % groups:
            raise ValueError(f"{x.shape[0]} crops do not split into {groups} groups")
        logs, conf = self(x)
        w = torch.softmax(conf.reshape(groups, -1), dim=1)
        level = (w * logs.reshape(groups, -1).exp()).sum(1)
        return level.clamp_min(FLOOR)


def crops(image: np.ndarray, size: int = CROP, n: int = CROPS) -> np.ndarray:
    """Up to ``n`` crops (N, size, size, 3) on an even grid; a small frame is edge-padded."""
    h, w = image.shape[:2]
    if h < size or w < size:
        image = np.pad(image, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="edge")
        h, w = image.shape[:2]
    k = round(n ** 0.5)
    ys = np.linspace(0, h - size, k).round().astype(int)
    xs = np.linspace(0, w - size, k).round().astype(int)
    return np.stack([image[y:y + size, x:x + size] for y in ys for x in xs])


def weights_path() -> Path:
    return Path(__file__).resolve().parent / "weights" / "estimator.safetensors"


@functools.lru_cache(maxsize=1)
def load(path: str | None = None) -> NoiseLevelNet:
    from safetensors.torch import load_file

    net = NoiseLevelNet()
    net.load_state_dict(load_file(path or str(weights_path())))
    return net.eval()


def available() -> bool:
    return weights_path().exists()


@torch.no_grad()
def estimate_sigma_net(image: np.ndarray) -> float:
    """Noise level (0..255) of an (H, W, 3) uint8 RGB frame, as the denoisers expect it."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(crops(img[..., :3]))).permute(0, 3, 1, 2).float() / 255
    with one_torch_thread():  # small work beside a busy engine: no thread pool
        return float(load().pooled(x)[0]) * 255


def loss(level: torch.Tensor, target: torch.Tensor, under: float = 0.7) -> torch.Tensor:
    """Asymmetric L1 on log levels: under-reading weighs ``under``, over-reading 1 - under."""
    d = torch.log(level) - torch.log(target.clamp_min(FLOOR))
    return torch.where(d < 0, under * -d, (1 - under) * d).mean()




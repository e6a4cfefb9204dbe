"""Real camera noise for training: the noise of real noisy/clean pairs, replayed on other photos.

No synthesis yet matches real in-camera noise (README, "How close the synthesis is to real
noise"): it stays finer-grained, and real noise keeps a slow part (autocorrelation at lag 8)
that none of the pipelines makes.  So besides synthesising it, take it from real pairs:
``noisy - clean`` of each pair (PolyU-style ``*_real`` / ``*_mean`` files, the tune half
only), cropped, flipped and rotated at random, shaped by the level the camera had at each
brightness, scaled by k (heavier noise of the same structure: phones in low light), and
added to a clean training photo.  This is the
noise-sampling idea of e.g. Abdelhamed et al. (Noise Flow, ICCV 2019) without the model:
the samples themselves.

    bank = NoiseBank.from_pairs(pair_paths(folder, "tune"))
    noise = bank.sample(clean, gen)       # like clean (B, 3, H, W): [0, 1] units, mean ~0
    noisy, level_map = apply(clean, noise, gen)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import list_digest, read_rgb

BINS = 16  # brightness bins of a noise level function


def noise_level_function(noise: np.ndarray, clean: np.ndarray, min_pixels: int = 200) -> np.ndarray:
    """(3, BINS) std of ``noise`` per channel and per bin of ``clean``'s brightness (mean of
    the channels); a bin with under ``min_pixels`` pixels takes its nearest filled bin's."""
    bins = np.minimum(clean.mean(axis=2) * BINS / 256, BINS - 1).astype(np.int64).ravel()
    counts = np.bincount(bins, minlength=BINS)
    nlf = np.zeros((3, BINS))
    for c in range(3):
        nlf[c] = np.sqrt(np.bincount(bins, noise[..., c].ravel().astype(np.float64) ** 2, BINS) / np.maximum(counts, 1))
    filled = np.flatnonzero(counts >= min_pixels)
    if filled.size == 0:
        raise ValueError("expected a noise image with some flat brightness, got too few pixels")
    nearest = filled[np.abs(np.arange(BINS)[:, None] - filled[None]).argmin(axis=1)]
    return np.maximum(nlf[:, nearest], 0.5)


class NoiseBank:
    """Noise images ``noisy - clean``, each as its noise level function (std per channel and
    brightness) and the noise divided by it, so that replayed on another photo the noise
    follows that photo's brightness as the camera's did (shot noise: more in the light)."""

    def __init__(self, unit: list[torch.Tensor], nlf: list[torch.Tensor], digest: str = "") -> None:
        if not unit or len(unit) != len(nlf):
            raise ValueError(f"expected noise images with one level function each, got {len(unit)} and {len(nlf)}")
        self.unit, self.nlf, self.digest = unit, nlf, digest

    @classmethod
    def from_pairs(cls, pairs: list[tuple[Path, Path]]) -> NoiseBank:
        """From (noisy, clean) image files of equal size."""
        unit, nlfs = [], []
        for noisy_path, clean_path in pairs:
            noisy, clean = read_rgb(noisy_path), read_rgb(clean_path)
            if noisy.shape != clean.shape:
                raise ValueError(f"expected {noisy_path.name} and {clean_path.name} of one size, "
                                 f"got {noisy.shape[:2]} and {clean.shape[:2]}")
            noise = noisy.astype(np.float32) - clean.astype(np.float32)
            nlf = noise_level_function(noise, clean)
            bins = np.minimum(clean.mean(axis=2) * BINS / 256, BINS - 1).astype(np.int64)
            u = noise / nlf.T[bins]  # (H, W, 3): unit std per channel and brightness
            unit.append(torch.from_numpy(u.astype(np.float16)).permute(2, 0, 1).contiguous())
            nlfs.append(torch.from_numpy(nlf.astype(np.float32)))
        files = [p for pair in pairs for p in pair]
        return cls(unit, nlfs, list_digest(files))

    def __len__(self) -> int:
        return len(self.unit)

    def sample(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Noise for a (B, 3, H, W) clean batch in [0, 1] units, float32: per image a random
        crop of a random noise image, flipped (and transposed where square), times its
        camera's level at the clean image's brightness.  The channels keep their order:
        their correlation is the camera's."""
        b, _, h, w = clean.shape
        out = torch.empty(b, 3, h, w)
        bins = (clean.mean(dim=1) * BINS).long().clamp_(0, BINS - 1).cpu()  # (B, H, W)
        for i in range(b):
            j = int(torch.randint(len(self.unit), (1,), generator=gen))
            img = self.unit[j]
            _, ih, iw = img.shape
            if ih < h or iw < w:
                raise ValueError(f"expected noise images of at least {w}x{h} px, got {iw}x{ih}")
            y = int(torch.randint(ih - h + 1, (1,), generator=gen))
            x = int(torch.randint(iw - w + 1, (1,), generator=gen))
            a = int(torch.randint(8, (1,), generator=gen))
            c = img[:, y:y + h, x:x + w].float()
            if a & 1:
                c = c.flip(-1)
            if a & 2:
                c = c.flip(-2)
            if a & 4 and h == w:
                c = c.transpose(-2, -1)
            out[i] = c * self.nlf[j][:, bins[i]]  # (3, H, W) levels from (3, BINS)
        return out.div_(255).to(clean.device)


def apply(clean: torch.Tensor, noise: torch.Tensor, gen: torch.Generator,
          scale: tuple[float, float] = (0.7, 6.0), max_sigma: float = 75.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Add ``noise`` times k (log-uniform in ``scale``, one k per image) to ``clean`` as an
    8-bit file would hold it (rounded, clipped); returns (noisy, map), the map each image's
    noise std (root mean square of noisy minus clean), the level a reading of the frame gives
    and what ``camera_isp`` samples are given."""
    b = clean.shape[0]
    lo, hi = np.log(scale[0]), np.log(scale[1])
    k = torch.exp(lo + torch.rand(b, generator=gen) * (hi - lo)).view(-1, 1, 1, 1).to(clean.device)
    noisy = (clean + k * noise.to(clean.device)).mul(255).round().clamp(0, 255).div(255)
    std = (noisy - clean).square().mean(dim=(1, 2, 3)).sqrt().clamp_max(max_sigma / 255)
    return noisy, std.view(-1, 1, 1, 1).expand(b, 1, *clean.shape[-2:]).contiguous()

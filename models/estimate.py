"""Noise-level estimation from the frame itself (what ``--sigma auto`` uses).

Classical, training-free: the PCA method of Chen, Zhu & Heng (ICCV 2015).  Natural image
patches live near a low-dimensional subspace; white noise adds the same variance to every
principal direction.  So the smallest eigenvalues of the patch covariance are the noise
variance: drop the largest eigenvalues until the mean of those left equals their median.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _patches(channel: np.ndarray, size: int, stride: int) -> np.ndarray:
    win = sliding_window_view(channel, (size, size))[::stride, ::stride]
    return win.reshape(-1, size * size)


def estimate_sigma(image: np.ndarray, patch: int = 7, max_patches: int = 60000) -> float:
    """Noise standard deviation of an (H, W, 3) or (H, W) image, in 0..255 units.

    Accepts uint8 (0..255) or float arrays in 0..255.  Large frames are sampled with a
    stride so the cost stays a few tens of milliseconds.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or min(img.shape[:2]) < patch + 1:
        raise ValueError(f"expected an (H, W[, C]) image at least {patch + 1} px a side, got {img.shape}")
    h, w, c = img.shape
    per_channel = (h - patch + 1) * (w - patch + 1)
    stride = max(1, int(np.ceil(np.sqrt(per_channel * c / max_patches))))
    x = np.concatenate([_patches(img[..., k], patch, stride) for k in range(c)]).astype(np.float64)
    x -= x.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x / len(x)))  # ascending
    eig = np.clip(eig, 0, None)
    for n in range(len(eig), 0, -1):
        tail = eig[:n]
        mean = tail.mean()
        if np.sum(tail > mean) == np.sum(tail < mean):
            return float(np.sqrt(mean))
    return float(np.sqrt(eig[0]))

"""The real-noise bank: noise taken from noisy/clean pairs, replayed on training photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.data import pair_paths
from models.noise_bank import NoiseBank, apply, noise_level_function
from models.training import NoiseMix, noisy_batch


def _pairs(folder: Path, n: int = 4, size: int = 48, std: float = 6.0) -> list[tuple[Path, Path]]:
    """PolyU-style pairs whose noise is known: clean grey ramps, noisy = clean + rounded
    Gaussian noise of ``std`` on the green channel only (a channel structure to keep)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clean = np.full((size, size, 3), 100 + 10 * i, np.uint8)
        noise = np.zeros((size, size, 3))
        noise[..., 1] = rng.normal(0, std, (size, size))
        noisy = np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"Cam_1_scene{i}_1_mean.png"), clean[..., ::-1])
        cv2.imwrite(str(folder / f"Cam_1_scene{i}_1_real.png"), noisy[..., ::-1])
    return pair_paths(folder)


def test_bank_holds_noisy_minus_clean_and_samples_it_with_channels_in_order(tmp_path: Path) -> None:
    bank = NoiseBank.from_pairs(_pairs(tmp_path))
    assert len(bank) == 4 and len(bank.digest) == 16
    clean = torch.full((32, 3, 32, 24), 128 / 255)  # non-square: flips only
    s = bank.sample(clean, torch.Generator().manual_seed(0)) * 255
    assert s.shape == (32, 3, 32, 24)
    assert float(s[:, 0].abs().max()) == 0 and float(s[:, 2].abs().max()) == 0  # red, blue: no noise
    assert 5.5 < float(s[:, 1].std()) < 6.5
    assert abs(float(s.mean())) < 0.2


def test_apply_scales_the_noise_and_maps_its_std(tmp_path: Path) -> None:
    bank = NoiseBank.from_pairs(_pairs(tmp_path))
    gen = torch.Generator().manual_seed(1)
    clean = torch.full((16, 3, 32, 32), 0.5)
    noisy, smap = apply(clean, bank.sample(clean, gen), gen, scale=(2.0, 2.0))
    assert torch.equal(noisy * 255, (noisy * 255).round())  # an 8-bit frame
    std = (noisy - clean).square().mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(smap[:, 0, 0, 0], std) and torch.equal(smap, smap[:, :, :1, :1].expand_as(smap))
    # green alone carries 2 x 6 levels: the rms over three channels is 12 / sqrt(3)
    assert 6.3 < float(std.mean() * 255) < 7.5
    clean = torch.full((64, 3, 32, 32), 0.5)
    _, wide = apply(clean, bank.sample(clean, gen), gen, scale=(0.7, 6.0))
    levels = wide[:, 0, 0, 0] * 255
    assert float(levels.min()) < 5 and float(levels.max()) > 12  # k spreads over its range


def test_noisy_batch_gives_the_real_share_only_with_a_bank(tmp_path: Path) -> None:
    bank = NoiseBank.from_pairs(_pairs(tmp_path))
    mix = NoiseMix(clipped=0, varying=0, camera=0, isp=0, real=0.5)
    clean = torch.full((8, 3, 32, 32), 128 / 255)
    noisy, _ = noisy_batch(clean, mix, torch.Generator().manual_seed(2), bank)
    real = (noisy[4:] - clean[4:]) * 255
    assert float(real[:, 0].abs().max()) == 0 and float(real[:, 1].abs().max()) > 0  # the bank's
    noisy, _ = noisy_batch(clean, mix, torch.Generator().manual_seed(2))  # no bank: all white noise
    assert float((noisy[4:, 0] - clean[4:, 0]).abs().max()) > 0


def test_replayed_noise_follows_the_new_photos_brightness_as_the_cameras_did(tmp_path: Path) -> None:
    """A camera with 2 levels of noise in the dark and 8 in the light (one pair, through the
    files as ``from_pairs`` reads them): replayed on a dark and on a light photo, each
    channel's noise has the camera's level at that brightness, whatever part of the pair the
    crop came from."""
    rng = np.random.default_rng(3)
    clean = np.zeros((64, 64, 3), np.uint8)
    clean[:, :32], clean[:, 32:] = 30, 220
    std = np.where(clean.mean(axis=2, keepdims=True) < 128, 2.0, 8.0)
    noisy = np.clip(np.round(clean + rng.normal(0, 1, clean.shape) * std), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "Cam_1_ramp_1_mean.png"), clean[..., ::-1])
    cv2.imwrite(str(tmp_path / "Cam_1_ramp_1_real.png"), noisy[..., ::-1])
    noise = noisy.astype(np.float32) - clean
    nlf = noise_level_function(noise, clean)
    dark, light = int(30 * 16 / 256), int(220 * 16 / 256)
    assert np.allclose(nlf[:, dark], 2, atol=0.1) and np.allclose(nlf[:, light], 8, atol=0.4)
    assert np.array_equal(nlf[:, 8], nlf[:, light]) and np.array_equal(nlf[:, 4], nlf[:, dark])  # empty bins: the nearest
    bank = NoiseBank.from_pairs(pair_paths(tmp_path))
    target = torch.cat([torch.full((4, 3, 48, 48), 30 / 255), torch.full((4, 3, 48, 48), 220 / 255)])
    out = bank.sample(target, torch.Generator().manual_seed(0)) * 255
    per_channel = out.std(dim=(2, 3))  # (8, 3): each crop, each channel
    assert float(per_channel[:4].min()) > 1.85 and float(per_channel[:4].max()) < 2.15, per_channel[:4]
    assert float(per_channel[4:].min()) > 7.4 and float(per_channel[4:].max()) < 8.6, per_channel[4:]
    assert float(out.mean().abs()) < 0.1


def test_pairs_of_two_sizes_are_refused(tmp_path: Path) -> None:
    pairs = _pairs(tmp_path, n=1)
    cv2.imwrite(str(pairs[0][1]), np.zeros((40, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="of one size"):
        NoiseBank.from_pairs(pairs)

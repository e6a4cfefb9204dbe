"""The ``tiny`` tier: registered, within its compute budget, and its shipped weights denoise."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from models import create_model, get_spec, load_metadata, model_names
from models.arch import count_macs
from models.metrics import psnr

PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data").glob("*.png"))
# Measured with the shipped weights (noisy 20.17 dB): astronaut tiny 30.74 / fast 31.23, coffee
# tiny 29.52 / fast 30.17, i.e. gains of 10.56 and 9.34 dB, 0.50 and 0.65 dB below fast.
GAIN_DB = 9.0
FAST_GAP_DB = 1.0


def mac_per_pixel(name: str) -> float:
    return count_macs(get_spec(name).build(), 1024, 1024) / 1024**2


def test_tiny_is_a_shipped_tier() -> None:
    assert "tiny" in model_names()
    spec = get_spec("tiny")
    assert spec.tier == "tiny" and not spec.temporal
    meta = load_metadata("tiny")
    assert meta["status"] == "trained" and meta["model"] == "tiny"


def test_tiny_compute_budget() -> None:
    # 1617 multiply-adds a pixel (fast: 3889), 42% of fast's: where its speed-up comes from
    tiny, fast = mac_per_pixel("tiny"), mac_per_pixel("fast")
    assert tiny <= 1650
    assert tiny <= 0.42 * fast


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_tiny_denoises_sigma_25(photo: Path) -> None:
    """Unclipped white noise, sigma 25, told the true level: well above the noisy input, and
    within a dB of fast."""
    clean = torch.from_numpy(cv2.imread(str(photo))[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    gen = torch.Generator().manual_seed(0)
    noisy = clean + torch.randn(clean.shape, generator=gen) * (25 / 255)
    sigma = torch.full_like(clean[:, :1], 25 / 255)
    out = {}
    with torch.inference_mode():
        for name in ("tiny", "fast"):
            y = create_model(name)(noisy, sigma)
            out[name] = psnr((y.clamp(0, 1) * 255).round() / 255, clean)
    gain = out["tiny"] - psnr(noisy, clean)
    assert gain >= GAIN_DB, (photo.stem, out)
    assert out["tiny"] >= out["fast"] - FAST_GAP_DB, (photo.stem, out)


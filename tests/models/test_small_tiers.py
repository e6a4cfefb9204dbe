"""The small CPU tiers ``tiny`` and ``nano``: registered, within their compute budgets, and
their shipped weights denoise."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from models import create_model, get_spec, load_metadata, model_names
from models.arch import count_macs
from models.metrics import psnr

PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data").glob("*.png"))
# Measured with the shipped weights (noisy 20.17 dB), sigma 25: astronaut tiny 30.73, nano
# 30.33, fast 31.23; coffee tiny 29.52, nano 29.30, fast 30.17 (gains of 9.1 to 10.6 dB, 0.5 to
# 0.9 dB below fast).
GAIN_DB = 9.0
FAST_GAP_DB = 1.1
SMALL = ("tiny", "nano")


def mac_per_pixel(name: str) -> float:
    return count_macs(get_spec(name).build(), 1024, 1024) / 1024**2


@pytest.mark.parametrize("name", SMALL)
def test_a_shipped_tier(name: str) -> None:
    assert name in model_names()
    spec = get_spec(name)
    assert spec.tier == name and not spec.temporal
    meta = load_metadata(name)
    assert meta["status"] == "trained" and meta["model"] == name and meta["estimator"] == "net"


def test_compute_budgets() -> None:
    # multiply-adds a pixel: fast 3889, tiny 1617 (42 % of fast), nano 1041 (64 % of tiny)
    fast, tiny, nano = mac_per_pixel("fast"), mac_per_pixel("tiny"), mac_per_pixel("nano")
    assert tiny <= 1650 and tiny <= 0.42 * fast
    assert nano <= 1050 and nano <= 0.65 * tiny


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_denoises_sigma_25(name: str, photo: Path) -> None:
    """Unclipped white noise, sigma 25, told the true level: well above the noisy input, and
    within about a dB of fast."""
    clean = torch.from_numpy(cv2.imread(str(photo))[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    gen = torch.Generator().manual_seed(0)
    noisy = clean + torch.randn(clean.shape, generator=gen) * (25 / 255)
    sigma = torch.full_like(clean[:, :1], 25 / 255)
    out = {}
    with torch.inference_mode():
        for model in (name, "fast"):
            y = create_model(model)(noisy, sigma)
            out[model] = psnr((y.clamp(0, 1) * 255).round() / 255, clean)
    gain = out[name] - psnr(noisy, clean)
    assert gain >= GAIN_DB, (photo.stem, out)
    assert out[name] >= out["fast"] - FAST_GAP_DB, (photo.stem, out)

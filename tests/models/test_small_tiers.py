"""The small CPU tiers ``tiny``, ``nano`` and ``pico``: registered, within their compute budgets, and
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
# 0.9 dB below fast); pico 29.51 and 28.57 (gains of 9.3 and 8.4 dB, 1.7 and 1.6 dB below fast).
GAIN_DB = {"tiny": 9.0, "nano": 9.0, "pico": 8.2}
FAST_GAP_DB = {"tiny": 1.1, "nano": 1.1, "pico": 1.9}
SMALL = ("tiny", "nano", "pico")


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
    # multiply-adds a pixel: fast 3889, tiny 1617 (42 % of fast), nano 1041 (64 % of tiny),
    # pico 673 (65 % of nano: the output stage is 3 x 3 conv 16 -> 16 and 16 -> 4 transposed
    # instead of 3 x 3 conv 16 -> 64)
    fast, tiny, nano, pico = (mac_per_pixel(n) for n in ("fast", "tiny", "nano", "pico"))
    assert tiny <= 1650 and tiny <= 0.42 * fast
    assert nano <= 1050 and nano <= 0.65 * tiny
    assert pico <= 700 and pico <= 0.65 * nano


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
    assert gain >= GAIN_DB[name], (photo.stem, out)
    assert out[name] >= out["fast"] - FAST_GAP_DB[name], (photo.stem, out)

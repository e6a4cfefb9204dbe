"""The learned noise reading's texture floor (``models.estimate.net_level``)."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import estimate as est
from models import estimate_net

DATA = Path(__file__).resolve().parents[1] / "data"


def _photo() -> np.ndarray:
    img = cv2.imread(str(DATA / "astronaut_crop.png"))[..., ::-1]
    return np.ascontiguousarray(img)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def test_level_keeps_low_readings_takes_the_floor_out_of_high_ones_and_never_falls() -> None:
    img = _photo()
    assert est.coarseness(img) < est.COARSE
    readings = np.linspace(0, 80, 321)
    levels = [est.net_level(img, r) for r in readings]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(levels))  # monotone
    a, b, c, d = est.FLOOR_RAMP
    for r, lv in zip(readings, levels):
        if r <= a or r >= d:  # light noise on a smooth scene, heavy noise: as read
            assert lv == pytest.approx(r)
        elif b <= r <= c:
            assert lv == pytest.approx(math.sqrt(r * r - est.NET_FLOOR ** 2))
        else:
            assert math.sqrt(max(r * r - est.NET_FLOOR ** 2, 0.0)) - 1e-9 <= lv <= r
    assert est.net_level(img, 10.0) == pytest.approx(math.sqrt(100 - 25))


def test_coarse_noise_keeps_its_reading() -> None:
    img = _photo().astype(np.float32)
    h, w = img.shape[:2]
    # white noise on 2 x 2 blocks: the coarseness the phase split is for (PolyU reads 3 to 14)
    grain = np.random.default_rng(3).normal(0, 8, (h // 2, w // 2, 3)).repeat(2, 0).repeat(2, 1)
    coarse = np.clip(np.round(img + grain), 0, 255).astype(np.uint8)
    assert est.coarseness(coarse) >= est.COARSE
    assert est.estimate(coarse, "net") == estimate_net.estimate_sigma_net(coarse)


@pytest.mark.skipif(not estimate_net.available(), reason="the learned estimator's weights are not shipped")
def test_clean_and_lightly_noisy_pictures_read_nearer_their_noise() -> None:
    img = _photo()
    raw = estimate_net.estimate_sigma_net(img)
    assert est.estimate(img, "net") < raw - 0.5  # a clean picture: texture is not noise
    light = _noisy(img, 5)
    raw5, level5 = estimate_net.estimate_sigma_net(light), est.estimate(light, "net")
    assert abs(level5 - 5) < abs(raw5 - 5) - 1.0
    level10 = est.estimate(_noisy(img, 10), "net")
    assert 8.5 < level10 < 11.5
    heavy = _noisy(img, 30)
    assert est.estimate(heavy, "net") == estimate_net.estimate_sigma_net(heavy)


def test_one_two_scale_pass_serves_a_frame_twice() -> None:
    img = _noisy(_photo(), 10)
    first = est.coarseness_and_level(img)
    calls = []
    real = est._two_scales
    est._two_scales = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[assignment]
    try:
        assert est.coarseness_and_level(img) == first
        assert not calls
        est.coarseness_and_level(img.copy())  # another frame of equal pixels is read again
        assert calls
    finally:
        est._two_scales = real  # type: ignore[assignment]

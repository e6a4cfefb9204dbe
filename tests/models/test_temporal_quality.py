"""Shipped recurrent models: they use the previous output without ghosting.

The quality checks gate the release of a recurrent model to ``--temporal auto`` (weights
metadata ``temporal_auto: yes``); models not released are skipped with a reason.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from models.lab.eval_video import add_noise
from models.lab.video_methods import run_model, smooth
from models.metrics import psnr

TEMPORAL = [n for n in models.model_names() if models.get_spec(n).temporal]


def released(name: str) -> bool:
    return models.load_metadata(name).get("temporal_auto") in ("yes", "off", "light", "strong")


def smoothing_after(name: str) -> str:
    after = models.load_metadata(name).get("temporal_auto", "off")
    return "off" if after == "yes" else after


def scene(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth-ish textured background (a photo-like mix of gradients and waves)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([70 + 90 * xx / w + 20 * np.sin(yy / 5),
                    60 + 110 * yy / h,
                    120 + 50 * np.sin(xx / 11) * np.cos(yy / 8)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", TEMPORAL)
def test_loads_and_runs_odd_sizes(name):
    model = models.create_model(name)
    x = torch.rand(1, 3, 29, 43)
    y = model(x, torch.full((1, 1, 29, 43), 0.1), torch.rand_like(x))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert models.get_spec(name.removesuffix("-temporal")).tier == models.get_spec(name).tier


@pytest.mark.slow
@pytest.mark.parametrize("name", TEMPORAL)
def test_static_scene_gains_over_per_frame(name):
    """What ``--temporal auto`` runs (the twin and the smoothing its release names) beats
    frame-by-frame on a still noisy scene, and gets better over the first frames."""
    if not released(name):
        pytest.skip(f"{name}: weights not released for --temporal auto")
    clean = [scene()] * 8
    noisy = add_noise(clean, 25.0, seed=0)
    dev = torch.device("cpu")
    rec = run_model(models.create_model(name), noisy, 25.0, dev, recurrent=True)
    if smoothing_after(name) != "off":
        rec = smooth(rec, 25.0, smoothing_after(name), dev)
    one = run_model(models.create_model(name.removesuffix("-temporal")), noisy, 25.0, dev, False)
    p_rec = [psnr(o, c, 255.0) for o, c in zip(rec, clean)]
    p_one = [psnr(o, c, 255.0) for o, c in zip(one, clean)]
    assert np.mean(p_rec[4:]) > p_rec[0] + 0.2, p_rec
    assert np.mean(p_rec[4:]) > np.mean(p_one[4:]) + 0.2, (p_rec, p_one)


@pytest.mark.slow
@pytest.mark.parametrize("name", TEMPORAL)
def test_no_ghost_of_moving_object(name):
    """A square moving 6 px a frame: where it was, the background is back within 2 frames
    (mean error there at most 1.5x that of the per-frame model on the same pixels)."""
    if not released(name):
        pytest.skip(f"{name}: weights not released for --temporal auto")
    bg = scene()
    clean, masks = [], []
    for i in range(10):
        img, m = bg.copy(), np.zeros(bg.shape[:2], bool)
        m[30:54, 6 + 6 * i:30 + 6 * i] = True
        img[m] = (230, 210, 40)
        clean.append(img)
        masks.append(m)
    noisy = add_noise(clean, 20.0, seed=1)
    dev = torch.device("cpu")
    rec = run_model(models.create_model(name), noisy, 20.0, dev, recurrent=True)
    one = run_model(models.create_model(name.removesuffix("-temporal")), noisy, 20.0, dev, False)
    errs_rec, errs_one = [], []
    for t in range(3, len(clean)):
        trail = masks[t - 2] & ~masks[t]  # covered two frames ago, background now
        errs_rec.append(np.abs(rec[t].astype(np.float32) - bg)[trail].mean())
        errs_one.append(np.abs(one[t].astype(np.float32) - bg)[trail].mean())
    assert np.mean(errs_rec) < 1.5 * np.mean(errs_one) + 1.0, (errs_rec, errs_one)

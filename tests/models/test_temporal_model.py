"""Recurrent model: training sequences, initialisation, the training loop (smoke, resume)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import models
from models.lab.temporal_data import (
    DAVIS_VAL_START,
    MotionConfig,
    SequenceSource,
    _affine_grid,
    add_noise,
)
from models.lab.train_temporal import init_from_per_frame, main, unroll


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A data folder shaped like ../shared/data: 4 photos, a 66-frame 'davis-bus' clip."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    ids = []
    for i in range(4):
        img = cv2.GaussianBlur(rng.integers(0, 256, (80, 112, 3), dtype=np.uint8), (0, 0), 2)
        if i == 1:
            img = np.ascontiguousarray(img.transpose(1, 0, 2))  # one portrait photo
        _write(root / "bsds500" / "train" / f"{i}.jpg", img)
        ids.append(str(i))
    (root / "splits").mkdir()
    (root / "splits" / "cbsd432.txt").write_text("\n".join(ids) + "\n")
    scene = cv2.GaussianBlur(rng.integers(0, 256, (96, 160, 3), dtype=np.uint8), (0, 0), 2)
    for f in range(DAVIS_VAL_START + 6):
        _write(root / "video" / "davis-bus" / f"{f:05d}.jpg", np.roll(scene, f, axis=1)[:, :96])
    return root


def test_affine_grid_identity_is_an_exact_crop():
    img = torch.rand(1, 3, 40, 60)
    centre = torch.tensor([[[30.0, 20.0]]])
    grid = _affine_grid(centre, torch.ones(1, 1), torch.zeros(1, 1), 16, 60, 40)
    crop = torch.nn.functional.grid_sample(img, grid, mode="bicubic", align_corners=False)
    torch.testing.assert_close(crop, img[..., 12:28, 22:38], atol=1e-5, rtol=0)


def test_sequences_static_moving_and_clips(tiny_data):
    src = SequenceSource(tiny_data, torch.device("cpu"))
    assert src.photos.shape == (4, 3, 80, 112) and src.photos.dtype == torch.uint8
    assert len(src.clips) == 1 and src.clips[0].shape[0] == DAVIS_VAL_START  # held-out tail
    gen = torch.Generator().manual_seed(0)
    static = src.batch(3, 4, 32, gen, MotionConfig(static_prob=1.0, object_prob=0.0, clip_prob=0.0,
                                                   cut_prob=0.0))
    assert static.shape == (3, 4, 3, 32, 32)
    assert float((static - static[:, :1]).abs().max()) < 1e-6  # tripod: identical frames
    moving = src.batch(6, 4, 32, gen, MotionConfig(static_prob=0.0, object_prob=1.0, clip_prob=0.0))
    assert float((moving[:, 1:] - moving[:, :-1]).abs().mean()) > 0.01
    assert 0.0 <= float(moving.min()) and float(moving.max()) <= 1.0
    clips = src.batch(2, 5, 32, gen, MotionConfig(clip_prob=1.0, cut_prob=0.0))
    assert clips.shape == (2, 5, 3, 32, 32)
    # the clip pans one pixel a frame (stride 1 or 2): consecutive frames are shifted copies
    d1 = (clips[:, 1:, :, :, 2:-2] - clips[:, :-1, :, :, 2:-2]).abs().mean()
    assert float(d1) > 0.005


def test_scene_cuts_in_training_sequences(tiny_data):
    src = SequenceSource(tiny_data, torch.device("cpu"))
    gen = torch.Generator().manual_seed(2)
    m = MotionConfig(static_prob=1.0, object_prob=0.0, clip_prob=0.0, cut_prob=1.0)
    seq = src.batch(4, 5, 32, gen, m)
    # static sequences, so every change between frames is the cut: exactly one per sequence
    changes = (seq[:, 1:] - seq[:, :-1]).abs().flatten(2).amax(-1) > 1e-6  # (B, T-1)
    assert changes.sum(1).tolist() == [1, 1, 1, 1]


def test_add_noise_levels():
    clean = torch.full((8, 3, 3, 24, 24), 0.5)
    gen = torch.Generator().manual_seed(1)
    noisy, smap = add_noise(clean, gen, sigma_max=55.0, camera=0.25)
    assert noisy.shape == clean.shape and smap.shape == (8, 3, 1, 24, 24)
    assert float(smap.max()) <= 55.0 / 255 + 1e-6
    # Gaussian part: measured std matches the map within sampling and rounding error
    for i in range(6):
        measured = float((noisy[i] - clean[i]).std())
        assert abs(measured - float(smap[i].mean())) < 0.15 * float(smap[i].mean()) + 0.003
    # fresh noise per frame, one level per sequence
    assert float((noisy[0, 0] - noisy[0, 1]).abs().mean()) > 0
    assert float(smap[0].std()) < 1e-6


def test_add_noise_isp_one_camera_per_sequence():
    """The replayed camera pipeline: the last ``isp`` share of the batch, one camera (and one
    JPEG choice) per sequence, fresh noise per frame, a constant noise map per sequence equal
    to the sequence's measured noise std, on the 8-bit grid like a decoded frame."""
    gen0 = torch.Generator().manual_seed(3)
    clean = (0.2 + 0.6 * torch.rand(1, 1, 3, 32, 32, generator=gen0)).expand(6, 4, 3, 32, 32).clone()
    gen = torch.Generator().manual_seed(2)
    noisy, smap = add_noise(clean, gen, sigma_max=55.0, camera=0.0, isp=0.5, jpeg_share=0.0)
    assert noisy.shape == clean.shape and smap.shape == (6, 4, 1, 32, 32)
    isp = noisy[3:]
    torch.testing.assert_close(isp * 255, (isp * 255).round(), atol=1e-4, rtol=0)
    for i in range(3, 6):
        std = (noisy[i] - clean[i]).pow(2).mean(dim=(1, 2, 3)).sqrt()  # per frame
        assert float(smap[i].std()) < 1e-6
        assert float(smap[i, 0, 0, 0, 0]) == pytest.approx(float(std.mean()), rel=1e-4)
        # one camera: every frame's noise level within 15 % of the sequence's
        assert float((std / std.mean() - 1).abs().max()) < 0.15
        assert float((noisy[i, 0] - noisy[i, 1]).abs().mean()) > 0  # fresh noise
    # different sequences get different cameras (levels spread)
    levels = [float(smap[i, 0, 0, 0, 0]) for i in range(3, 6)]
    assert max(levels) > 1.05 * min(levels)


@pytest.mark.parametrize("name", [n.removesuffix("-temporal") for n in models.model_names()
                                  if models.get_spec(n).temporal])
def test_temporal_init_reproduces_per_frame_model(tmp_path, name):
    """Initialised from per-frame weights, the twin ignores prev: same output as the model."""
    per_frame = models.get_spec(name).build()
    for p in per_frame.parameters():  # non-trivial weights, not the identity placeholders
        torch.nn.init.normal_(p, std=0.05)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in per_frame.state_dict().items()}, str(tmp_path / "w.safetensors"))
    twin = models.get_spec(f"{name}-temporal").build()
    init_from_per_frame(twin, tmp_path / "w.safetensors")
    x, s = torch.rand(1, 3, 37, 45), torch.full((1, 1, 37, 45), 0.08)
    with torch.no_grad():
        torch.testing.assert_close(twin(x, s, torch.rand_like(x)), per_frame(x, s), atol=1e-5, rtol=0)


def test_unroll_feeds_previous_output():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, sigma, prev=None):
            seen.append(None if prev is None else prev.clone())
            return x * 0.5

    noisy = torch.rand(2, 3, 3, 8, 8)
    out = unroll(Spy(), noisy, torch.zeros(2, 3, 1, 8, 8))
    assert seen[0] is None
    torch.testing.assert_close(seen[1], noisy[:, 0] * 0.5)
    torch.testing.assert_close(out, noisy * 0.5)


@pytest.mark.slow
def test_training_smoke_and_resume(tiny_data, tmp_path):
    out = tmp_path / "run"
    common = ["--model", "base-temporal", "--device", "cpu", "--smoke", "--data", str(tiny_data),
              "--out", str(out), "--val-size", "32"]
    assert main([*common, "--steps", "2"]) == 0
    from safetensors import safe_open

    with safe_open(str(out / "base-temporal.safetensors"), framework="pt") as f:
        m = f.metadata()
        keys = set(f.keys())
    assert m["steps"] == "2" and m["status"] == "trained"
    assert "python -m models.lab.train_temporal" in m["command"] and "--steps 2" in m["command"]
    assert "bsds500/train/0.jpg" in json.loads(m["data"])
    assert keys == set(models.get_spec("base-temporal").build().state_dict())
    assert main([*common, "--steps", "4"]) == 0  # resumes from the checkpoint
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "at step 2" in log
    with safe_open(str(out / "base-temporal.safetensors"), framework="pt") as f:
        assert f.metadata()["steps"] == "4"
    twin = models.create_model("base-temporal", weights=out / "base-temporal.safetensors")
    y = twin(torch.rand(1, 3, 20, 24), torch.full((1, 1, 20, 24), 0.1), torch.rand(1, 3, 20, 24))
    assert y.shape == (1, 3, 20, 24) and torch.isfinite(y).all()


def test_training_refuses_per_frame_model(tiny_data, tmp_path, capsys):
    assert main(["--model", "base", "--device", "cpu", "--data", str(tiny_data), "--out", str(tmp_path)]) == 2
    assert "not temporal" in capsys.readouterr().err


def test_training_needs_data(tmp_path, capsys):
    assert main(["--device", "cpu", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no training data" in capsys.readouterr().err


def test_clip_choice_keeps_held_out_clips_out(tiny_data):
    src = SequenceSource(tiny_data, torch.device("cpu"), clips=[])
    assert src.clips == [] and not any("video/" in p for p in src.data_list)
    src = SequenceSource(tiny_data, torch.device("cpu"), clips=["davis-bus"])
    assert len(src.clips) == 1 and not any("bikes" in p for p in src.data_list)
    with pytest.raises(ValueError, match="carphone"):
        SequenceSource(tiny_data, torch.device("cpu"), clips=["carphone"])


def test_fast_twin_follows_fast_config():
    fast, twin = models.get_spec("fast").config, models.get_spec("fast-temporal").config
    assert twin.temporal and not fast.temporal
    assert dataclasses.replace(twin, temporal=False) == fast


def test_release_records_device_results_and_auto(tmp_path):
    from models.lab.train_temporal import release, save_weights

    net = models.get_spec("fast-temporal").build()
    run = tmp_path / "run.safetensors"
    save_weights(net, run, {"status": "trained", "command": "python -m models.lab.train_temporal x",
                            "steps": "7"})
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"clips": [{"frames": "bus", "rows": []}]}))
    meta = release(run, suite, "auto", "cpu (2 cores)", tmp_path / "out.safetensors")
    assert meta["temporal_auto"] == "auto" and meta["steps"] == "7"
    assert json.loads(meta["eval_video"])["clips"][0]["frames"] == "bus"
    twin = models.create_model("fast-temporal", weights=tmp_path / "out.safetensors")
    torch.testing.assert_close(twin.state_dict(), net.state_dict())
    assert "temporal_auto" not in release(run, suite, None, "cpu", tmp_path / "o2.safetensors")
    save_weights(net, run, {"status": "checkpoint"})
    with pytest.raises(ValueError, match="checkpoint"):
        release(run, suite, "auto", "cpu", tmp_path / "o3.safetensors")

"""Camera calibration's measurement and profile files (models/calibrate.py, calibrate_profile.py), on tiny data."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models import create_model
from models.calibrate import (
    CalibrationError,
    NlfAccumulator,
    measure_clip,
    measure_pairs,
    nlf_map,
    still_segments,
)
from models.calibrate_profile import Profile, list_profiles, load_profile, save_profile
from models.data import read_rgb
from models.noise import camera_isp, sample_isp

PHOTO = Path(__file__).resolve().parents[1] / "data" / "astronaut_crop.png"


def still_clip(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean (H, W, 3), noisy (n, H, W, 3)) uint8: one still photo through one replayed
    camera (no JPEG), fresh noise per frame (``seed``; the camera is always the same)."""
    clean = read_rgb(PHOTO)[:96, :128]
    cam = sample_isp(torch.Generator().manual_seed(0), shot=(4e-3, 4e-3))
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(clean).permute(2, 0, 1).float().div(255)[None].expand(n, -1, -1, -1).contiguous()
    noisy, _ = camera_isp(x, gen, jpeg_share=0.0, cams=[cam] * n)
    return clean, (noisy * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_nlf_from_a_still_clip_matches_the_truth() -> None:
    clean, frames = still_clip()
    m = measure_clip(frames, "synthetic")
    # the truth: the same frames' spread around the pipeline's expected output (200 frames'
    # mean; the replayed pipeline's noise is not zero-mean around the clean photo)
    expected = still_clip(200, seed=5)[1].astype(np.float64).mean(0)
    truth = NlfAccumulator()
    for f in frames:
        truth.add(clean, f.astype(np.float32) - expected)
    t = truth.result().array()
    got = m.nlf.array()
    both = np.isfinite(t) & np.isfinite(got)
    assert both.sum() >= 12
    rel = np.abs(got[both] - t[both]) / t[both]
    assert np.median(rel) < 0.03 and rel.max() < 0.12, rel  # the issue asks within 10 %
    assert abs(m.nlf.level() - truth.result().level()) / truth.result().level() < 0.03
    assert m.correlation["lag1"] > 0.2  # demosaicked camera noise is spatially correlated
    assert m.used == len(frames) and len(m.samples) >= 4


def test_still_segments_and_bad_clips() -> None:
    _clean, frames = still_clip(16)
    moved = np.roll(frames, 9, axis=2)  # the camera jumps after 10 frames
    clip = np.concatenate([frames[:10], moved[10:]])
    segs = still_segments(clip, min_len=5)
    assert [(a, b) for a, b, _ in segs] == [(0, 10), (10, 16)]
    assert all(mask.mean() > 0.8 for *_, mask in segs)
    rng = np.random.default_rng(0)
    with pytest.raises(CalibrationError, match="no still part"):
        measure_clip(np.stack([np.roll(frames[i], 7 * i, axis=1) for i in range(16)])
                     + rng.integers(0, 2, (16, 1, 1, 1), dtype=np.uint8) * 60, "moving")
    with pytest.raises(CalibrationError, match="at least 8"):
        measure_clip(frames[:3], "short")


def test_pairs_and_nlf_map(tmp_path: Path) -> None:
    clean, frames = still_clip(2)
    import cv2

    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"Cam_x_scene_{i}_real.png"), f[..., ::-1])
        cv2.imwrite(str(tmp_path / f"Cam_x_scene_{i}_mean.png"), clean[..., ::-1])
    from models.data import pair_paths

    m = measure_pairs(pair_paths(tmp_path), str(tmp_path))
    assert m.used == 2 and m.kind == "pairs"
    level = nlf_map(frames[0], m.nlf)
    assert level.shape == frames[0].shape[:2] and level.dtype == np.float32
    rms = float(np.sqrt((level ** 2).mean()))
    assert abs(rms - m.nlf.level()) / m.nlf.level() < 0.25


def test_recipe_search_tunes_on_the_tune_half_only(tmp_path: Path) -> None:
    """Four scenes of one camera: the tune half holds two, one to calibrate on and one to
    validate on; the test half's files are not images at all, so reading them would fail."""
    import cv2

    from models.data import pair_paths
    from models.lab.calibrate_search import main

    clean, frames = still_clip(4)
    for i, name in enumerate(["a", "b", "c", "d"]):
        crop = (slice(8 * i, 8 * i + 64), slice(0, 96))
        cv2.imwrite(str(tmp_path / f"Cam_x_{name}_1_real.png"), frames[i][crop][..., ::-1])
        cv2.imwrite(str(tmp_path / f"Cam_x_{name}_1_mean.png"), clean[crop][..., ::-1])
    for noisy, ref in pair_paths(tmp_path, "test"):
        noisy.write_bytes(b"not a picture"), ref.write_bytes(b"not a picture")
    out = tmp_path / "search.json"
    assert main(["--pairs", str(tmp_path), "--config", '{"steps": 40, "patch": 32}', "--cbsd68", "0",
                 "--json", str(out)]) == 0
    import json

    rep = json.loads(out.read_text())
    row = rep["cameras"]["Cam"]
    assert (row["fit_pairs"], row["val_pairs"]) == (1, 1)
    assert rep["config"]["steps"] == 40 and rep["config"]["patch"] == 32
    assert row["tuned"] > row["untuned"]  # heavy noise of one camera, 40 steps: it learns some


def make_profile(name: str = "cam") -> Profile:
    _clean, frames = still_clip(12)
    m = measure_clip(frames, "synthetic")
    return Profile(name=name, model="fast", base_hash="0" * 16, source="synthetic", kind="clip",
                   used=m.used, data_hash=m.data_hash, nlf=m.nlf, correlation=m.correlation,
                   size=m.size, gains={"seen_base": 30.0, "seen_tuned_estimate": 31.0})


def test_profile_round_trip(tmp_path: Path) -> None:
    p = make_profile()
    state = create_model("fast").state_dict()
    folder = save_profile(p, state, {"model": "fast"}, root=tmp_path)
    assert sorted(x.name for x in folder.iterdir()) == ["noise.png", "profile.json", "weights.safetensors"]
    back = load_profile("cam", root=tmp_path)
    assert back.to_json() == p.to_json()
    net = create_model("fast", weights=back.weights)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), state.values()))
    assert [q.name for q in list_profiles(tmp_path)] == ["cam"]
    assert math.isfinite(back.nlf.level())


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = make_profile()
    state = create_model("fast").state_dict()
    save_profile(p, state, {}, root=tmp_path)
    before = (tmp_path / "cam" / "profile.json").read_text()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("models.calibrate_profile.plot_nlf", broken)
    p2 = make_profile()
    p2.gains = {"seen_base": 1.0}
    with pytest.raises(OSError):
        save_profile(p2, state, {}, root=tmp_path)
    assert [x.name for x in tmp_path.iterdir()] == ["cam"]  # no temporary folder left
    assert (tmp_path / "cam" / "profile.json").read_text() == before
    with pytest.raises(CalibrationError, match="no profile 'other'"):
        load_profile("other", root=tmp_path)


def test_split_forward_is_the_engines_phase_split_and_trains() -> None:
    """The calibration tunes coarse-noise cameras through the blend the product runs: its
    torch split equals ``engines.phase_split`` on the same net, and gradients reach the net."""
    from engines import phase_split
    from models.calibrate_tune import run_model, split_forward

    torch.manual_seed(0)
    net = create_model("fast", pretrained=False).eval()
    x = torch.rand(1, 3, 30, 42)
    with torch.no_grad():
        split = split_forward(net, x, torch.full((1, 1, 30, 42), 0.02 * 1.4)).clamp(0, 1).mul(255).round()
    full = run_model(net, x[0], 0.02)[None] * 255
    blended = (torch.floor((full + split + 1) / 2))[0].permute(1, 2, 0).numpy()

    def infer(frames: np.ndarray, level: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(frames).permute(0, 3, 1, 2) / 255
        with torch.no_grad():
            y = net(t, torch.full_like(t[:, :1], float(level[0]) / 255))
        return (y.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().byte().numpy()

    ref = phase_split.run(infer, x.permute(0, 2, 3, 1).numpy() * 255, np.array([0.02 * 255], np.float32),
                          "blend", 1.4)[0]
    assert np.abs(blended - ref).max() < 1e-3
    # a batch: each image's phases come back to that image (as one at a time)
    xb = torch.rand(3, 3, 32, 48)
    mb = torch.rand(3, 1, 32, 48) * 0.1
    with torch.no_grad():
        whole = split_forward(net, xb, mb)
        alone = torch.cat([split_forward(net, xb[i:i + 1], mb[i:i + 1]) for i in range(3)])
    assert (whole - alone).abs().max().item() < 1e-5
    net.train()
    out = split_forward(net, x, torch.full((1, 1, 30, 42), 0.05))
    assert out.shape == x.shape
    out.mean().backward()
    assert net.head.weight.grad is not None and net.head.weight.grad.abs().sum() > 0

"""``python -m stream calibrate``, ``profiles`` and ``--profile`` end to end, on tiny data.

The fine-tune runs a few steps only (what is tested is the path, the files and the errors;
the gains are measured by ``python -m models.lab.calibrate_eval``), its replay uses the
calibration's own references instead of CBSD432 and the forgetting check is skipped, so
nothing here needs ../shared.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from stream_helpers import quick_calibration

from models.data import read_rgb
from models.metrics import psnr
from models.noise import camera_isp, sample_isp
from stream.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "data" / "astronaut_crop.png"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return quick_calibration(tmp_path, monkeypatch)


def noisy_frames(n: int, size: tuple[int, int] = (64, 96), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = read_rgb(PHOTO)[:size[0], :size[1]]
    cam = sample_isp(torch.Generator().manual_seed(0), shot=(4e-3, 4e-3))
    x = torch.from_numpy(clean).permute(2, 0, 1).float().div(255)[None].expand(n, -1, -1, -1).contiguous()
    noisy, _ = camera_isp(x, torch.Generator().manual_seed(seed), jpeg_share=0.0, cams=[cam] * n)
    return clean, (noisy * 255).round().byte().permute(0, 2, 3, 1).numpy()


def write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    folder = tmp_path / "pairs"
    folder.mkdir()
    clean, frames = noisy_frames(3)
    for i, (cam, scene) in enumerate((("CamA", "desk"), ("CamA", "wall"), ("CamB", "desk"))):
        write(folder / f"{cam}_x_{scene}_{i}_real.png", frames[i])
        write(folder / f"{cam}_x_{scene}_{i}_mean.png", clean)
    return folder


def test_calibrate_pairs_then_profile_run(pairs: Path, tmp_path: Path, cache: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--pairs", str(pairs), "--name", "a", "--steps", "3", "-q"]) == 2
    assert "2 cameras (CamA, CamB); choose one with --camera" in capsys.readouterr().err
    assert main(["calibrate", "--pairs", str(pairs), "--camera", "Nope", "--name", "a", "-q"]) == 2
    assert "--camera Nope: no pairs of it" in capsys.readouterr().err
    assert not cache.exists() or not any(cache.iterdir())

    assert main(["calibrate", "--pairs", str(pairs), "--camera", "CamA", "--name", "a",
                 "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "std G" in out and "correlation: lag1" in out and "profile a (fast, 3 steps" in out
    prof = json.loads((cache / "a" / "profile.json").read_text())
    assert prof["used"] == 2 and prof["steps"] == 3 and prof["model"] == "fast"
    from safetensors import safe_open

    with safe_open(str(cache / "a" / "weights.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["model"] == "fast" and meta["steps"] == "3" and meta["estimator"] == "net"
    assert len(meta["base_model_sha256_16"]) == 16 and meta["data_hash"] == prof["data_hash"]
    assert cv2.imread(str(cache / "a" / "noise.png")).shape == (320, 480, 3)
    assert main(["calibrate", "--pairs", str(pairs), "--camera", "CamA", "--name", "a", "-q"]) == 2
    assert "exists" in capsys.readouterr().err  # no silent replacement without -y

    assert main(["profiles"]) == 0
    assert capsys.readouterr().out.startswith("a\tfast\tpairs (2)")

    clean, frames = noisy_frames(1, seed=9)
    write(tmp_path / "noisy.png", frames[0])
    results = {}
    for noise_map in ("estimate", "nlf"):
        (cache / "a" / "profile.json").write_text(json.dumps({**prof, "noise_map": noise_map}))
        target = tmp_path / f"out-{noise_map}.png"
        assert main([str(tmp_path / "noisy.png"), str(target), "--profile", "a", "--temporal", "off",
                     "--backend", "torch", "-q"]) == 0
        results[noise_map] = read_rgb(target)
        assert psnr(results[noise_map], clean, 255.0) > psnr(frames[0], clean, 255.0) + 1.0
    assert not np.array_equal(results["estimate"], results["nlf"])

    assert main([str(tmp_path / "noisy.png"), str(tmp_path / "o.png"), "--profile", "a",
                 "--model", "base", "-q"]) == 2
    assert "--profile a was made for model fast, not base" in capsys.readouterr().err
    assert main([str(tmp_path / "noisy.png"), str(tmp_path / "o.png"), "--profile", "zz", "-q"]) == 2
    assert "no profile 'zz'" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_calibrate_from_a_still_clip(tmp_path: Path, cache: Path) -> None:
    clip = tmp_path / "clip"
    clip.mkdir()
    _, frames = noisy_frames(16)
    for i, f in enumerate(frames):
        write(clip / f"{i:03d}.png", f)
    assert main(["calibrate", str(clip), "--name", "desk", "--steps", "2", "-q"]) == 0
    prof = json.loads((cache / "desk" / "profile.json").read_text())
    assert prof["kind"] == "clip" and prof["used"] == 16 and prof["size"] == [96, 64]


def test_bad_clips_write_nothing(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moving, short = tmp_path / "moving", tmp_path / "short"
    moving.mkdir(), short.mkdir()
    _, frames = noisy_frames(16)
    for i, f in enumerate(frames):  # a new view every frame
        write(moving / f"{i:03d}.png", np.roll(f, 11 * i, axis=1) // (1 + i % 2))
    for i, f in enumerate(frames[:3]):
        write(short / f"{i:03d}.png", f)
    assert main(["calibrate", str(moving), "--name", "m", "-q"]) == 2
    assert "no still part" in capsys.readouterr().err
    assert main(["calibrate", str(short), "--name", "m", "-q"]) == 2
    assert "3 frames; a calibration needs at least" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "missing.mp4"), "--name", "m", "-q"]) == 2
    assert main(["calibrate", "--name", "m", "-q"]) == 2
    assert "no SOURCE" in capsys.readouterr().err
    assert main(["calibrate", str(short), "--name", "../x", "-q"]) == 2
    assert not cache.exists() or not any(cache.iterdir())

"""python -m stream IN OUT on generated clips: frames, timestamps, audio, size, metadata."""
from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest
from conftest import add_noise, moving_scene, write_clip

from models.metrics import psnr
from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mp4_with_audio_end_to_end(clip_with_audio, tmp_path, read, ffprobe):
    before = sha(clip_with_audio.path)
    out = tmp_path / "out.mp4"
    assert main([str(clip_with_audio.path), str(out), *FAST]) == 0
    assert sha(clip_with_audio.path) == before  # the input is never modified
    src, res = read(clip_with_audio.path), read(out)
    assert len(res["frames"]) == len(src["frames"]) == 12
    assert res["times"] == src["times"]
    assert res["size"] == (64, 48)
    assert len(src["audio"]) > 0
    assert res["audio"] == src["audio"]  # packet for packet, byte for byte
    # ffprobe reads it without a complaint and sees h264 + aac
    codecs = ffprobe("-show_entries", "stream=codec_name", "-of", "csv=p=0", str(out)).split()
    assert codecs == ["h264", "aac"]


@pytest.mark.parametrize("model", ["fast", "base"])
def test_psnr_gain_at_sigma_25(tmp_path, read, model):
    clean = moving_scene(6, 96, 64)
    noisy = add_noise(clean, 25)
    clip = write_clip(tmp_path / "noisy.mkv", noisy, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "out.mkv"
    assert main([str(clip.path), str(out), "--sigma", "25", "--codec", "ffv1", "--model", model,
                 "--backend", "torch", "--device", "cpu", "--quiet"]) == 0
    res = read(out)["frames"]
    before = np.mean([psnr(n, c, 255) for n, c in zip(noisy, clean)])
    after = np.mean([psnr(o, c, 255) for o, c in zip(res, clean)])
    assert after >= before + 3, (before, after)


def test_default_path_is_onnxruntime_on_the_cpu(tmp_path, read, capsys):
    """No --model, --backend, --device or --temporal: what a user on a CPU gets (fast on ONNX
    Runtime, the still-camera smoothing after it), through the command line."""
    pytest.importorskip("onnxruntime")
    clean = moving_scene(6, 96, 64)
    noisy = add_noise(clean, 25)
    clip = write_clip(tmp_path / "noisy.mkv", noisy, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "out.mkv"
    assert main([str(clip.path), str(out), "--sigma", "25", "--codec", "ffv1"]) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert "model fast, backend onnxruntime-cpu, sigma 25.0, temporal auto" in summary, summary
    res = read(out)["frames"]
    assert len(res) == 6
    before = np.mean([psnr(n, c, 255) for n, c in zip(noisy, clean)])
    after = np.mean([psnr(o, c, 255) for o, c in zip(res, clean)])
    assert after >= before + 3, (before, after)


def test_ffv1_is_lossless_through_identity(tmp_path, read, monkeypatch, identity_engine):
    """With an identity engine the ffv1 output equals the decoded input bit for bit."""
    import stream.cli
    import stream.session

    monkeypatch.setattr(stream.session, "open_engine", lambda opts: identity_engine)
    frames = add_noise(moving_scene(5, 40, 30), 20)
    clip = write_clip(tmp_path / "in.mkv", frames, codec="ffv1", pix_fmt="bgr0", audio=False)
    out = tmp_path / "out.mkv"
    assert main([str(clip.path), str(out), "--codec", "ffv1", "--sigma", "7", "--temporal", "off",
                 "--quiet"]) == 0
    res = read(out)
    assert all(np.array_equal(a, b) for a, b in zip(res["frames"], frames))
    assert identity_engine.calls == [7.0] * 5


def test_variable_frame_rate_timestamps_kept(tmp_path, read):
    pts = [0, 40, 70, 150, 160, 300, 333, 400]
    clip = write_clip(tmp_path / "vfr.mkv", moving_scene(len(pts), 48, 32), pts=pts,
                      time_base=Fraction(1, 1000), audio=False)
    src = read(clip.path)
    assert src["times"] == [Fraction(p, 1000) for p in pts]
    for name in ("out.mp4", "out.mkv"):
        out = tmp_path / name
        assert main([str(clip.path), str(out), *FAST]) == 0
        assert read(out)["times"] == src["times"], name


@pytest.mark.parametrize("size", [(63, 47), (50, 31)])
def test_odd_size_kept(tmp_path, read, size):
    w, h = size
    clip = write_clip(tmp_path / "odd.mkv", moving_scene(4, w, h), codec="ffv1",
                      pix_fmt="yuv444p", audio=False)
    out = tmp_path / "out.mp4"
    assert main([str(clip.path), str(out), *FAST]) == 0
    res = read(out)
    assert res["size"] == (w, h)
    assert len(res["frames"]) == 4 and res["frames"][0].shape == (h, w, 3)


def test_rotation_and_colour_carried_over(tmp_path, read, ffprobe):
    clip = write_clip(tmp_path / "rot.mp4", moving_scene(4, 48, 32), rotation=90,
                      color_range=2, colorspace=1, audio=False)
    src = read(clip.path)
    assert src["rotation"] == 90 and src["color_range"] == 2 and src["colorspace"] == 1
    out = tmp_path / "out.mp4"
    assert main([str(clip.path), str(out), *FAST]) == 0
    res = read(out)
    assert res["rotation"] == 90
    assert res["color_range"] == 2 and res["colorspace"] == 1
    # pixels stay stored unrotated; players apply the display matrix
    assert res["size"] == (48, 32)
    text = ffprobe("-show_streams", str(out))
    assert "color_range=pc" in text and "color_space=bt709" in text


def test_codec_and_crf_options(tmp_path, read, ffprobe, clip_with_audio):
    out = tmp_path / "out.mkv"
    assert main([str(clip_with_audio.path), str(out), "--codec", "ffv1", *FAST]) == 0
    codecs = ffprobe("-show_entries", "stream=codec_name", "-of", "csv=p=0", str(out)).split()
    assert codecs == ["ffv1", "aac"]
    small, big = tmp_path / "small.mp4", tmp_path / "big.mp4"
    assert main([str(clip_with_audio.path), str(small), "--crf", "40", *FAST]) == 0
    assert main([str(clip_with_audio.path), str(big), "--crf", "5", *FAST]) == 0
    assert small.stat().st_size < big.stat().st_size
    assert len(read(small)["frames"]) == 12


def test_overwrite_with_y(clip_with_audio, tmp_path, read):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    assert main([str(clip_with_audio.path), str(out), "-y", *FAST]) == 0
    assert len(read(out)["frames"]) == 12


def test_several_outputs_each_get_frames_and_audio(clip_with_audio, tmp_path, read):
    a, b, c = tmp_path / "a.mp4", tmp_path / "frames", tmp_path / "c.mkv"
    assert main([str(clip_with_audio.path), str(a), f"{b}/", str(c), *FAST]) == 0
    src = read(clip_with_audio.path)
    for out in (a, c):
        res = read(out)
        assert len(res["frames"]) == 12 and res["times"] == src["times"]
        assert res["audio"] == src["audio"]
    assert sorted(p.name for p in b.iterdir()) == [f"{i:06d}.png" for i in range(12)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_input_warns_and_keeps_what_decodes(tmp_path, read, caplog, suffix):
    # mp4 with its index in front (faststart) says how many frames there were; mkv says
    # how long it was
    clip = write_clip(tmp_path / f"full{suffix}", moving_scene(40, 64, 48), audio=False,
                      container_options={"movflags": "faststart"} if suffix == ".mp4" else {})
    data = clip.path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out.mp4"
    assert main([str(cut), str(out), *FAST]) == 0
    n = len(read(out)["frames"])
    assert 0 < n < 40
    assert "truncated" in caplog.text and f"decoded {n} " in caplog.text
    caplog.clear()
    assert main([str(clip.path), str(out), "-y", *FAST]) == 0
    assert "truncated" not in caplog.text


def test_container_without_h264_gets_its_own_default_codec(clip_with_audio, tmp_path, ffprobe):
    out = tmp_path / "out.webm"  # WebM holds VP8/VP9/AV1 and Vorbis/Opus only
    assert main([str(clip_with_audio.path), str(out), *FAST]) == 0
    codecs = ffprobe("-show_entries", "stream=codec_name", "-of", "csv=p=0", str(out)).split()
    assert codecs == ["vp9"]  # AAC cannot go into WebM: left out with a warning

"""Issue 12: grey input stays grey (one channel, no tint), alpha in PNG/WebP/TIFF comes out
unchanged."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import add_noise, moving_scene

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet", "--sigma", "10",
        "--temporal", "off"]


def grey_frames(n: int, w: int = 48, h: int = 32) -> list[np.ndarray]:
    return [f[..., 1].copy() for f in add_noise(moving_scene(n, w, h), 10)]


def write_grey_clip(path, frames) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "gray"
        for i, g in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(g, format="gray")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


def test_grey_video_stays_grey(tmp_path):
    frames = grey_frames(4)
    src = tmp_path / "g.mkv"
    write_grey_clip(src, frames)
    out = tmp_path / "o.mkv"
    assert main([str(src), str(out), "--codec", "ffv1", *FAST]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
        got = [f.to_ndarray() for f in c.decode(video=0)]
    assert len(got) == 4 and got[0].ndim == 2 and got[0].shape == (32, 48)
    # denoised, and its brightness kept (not tinted, not shifted by a range conversion)
    assert abs(float(got[0].mean()) - float(frames[0].mean())) < 2
    assert np.abs(got[0].astype(int) - frames[0]).mean() > 1


@pytest.mark.parametrize("name", ["o.mp4", "o.webm"])
def test_grey_video_has_no_tint(tmp_path, name):
    # H.264 is written monochrome (FFmpeg decodes it as 4:2:0 with neutral chroma); VP9 takes
    # no grey format, so it gets 4:2:0 whose chroma planes must stay neutral
    src = tmp_path / "g.mkv"
    write_grey_clip(src, grey_frames(3))
    out = tmp_path / name
    assert main([str(src), str(out), "--crf", "10", *FAST]) == 0
    with av.open(str(out)) as c:
        f = next(c.decode(video=0)).to_ndarray(format="yuv444p")
    assert np.abs(f[1].astype(int) - 128).max() <= 1 and np.abs(f[2].astype(int) - 128).max() <= 1


def test_grey_image_stays_grey(tmp_path):
    src = tmp_path / "g.png"
    cv2.imwrite(str(src), grey_frames(1)[0])
    out = tmp_path / "o.png"
    assert main([str(src), str(out), *FAST]) == 0
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (32, 48)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_alpha_carried_through(tmp_path, suffix):
    rgb = add_noise(moving_scene(1, 48, 32), 10)[0]
    alpha = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (32, 1))
    src = tmp_path / f"a{suffix}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else []  # lossless
    cv2.imwrite(str(src), np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), alpha]), params)
    out = tmp_path / f"o{suffix}"
    assert main([str(src), str(out), *FAST]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (32, 48, 4)
    assert np.array_equal(got[..., 3], alpha)


def test_alpha_in_a_folder_and_into_jpeg(tmp_path, caplog):
    src = tmp_path / "in"
    src.mkdir()
    alpha = np.full((16, 16), 77, np.uint8)
    colour = np.zeros((16, 16, 3), np.uint8) + np.array([40, 120, 200], np.uint8)
    cv2.imwrite(str(src / "a.png"), np.dstack([colour, alpha]))
    cv2.imwrite(str(src / "b.png"), np.full((16, 16, 3), 90, np.uint8))
    assert main([str(src), str(tmp_path / "out"), *FAST]) == 0
    a = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "out" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (16, 16, 4) and np.array_equal(a[..., 3], alpha) and b.shape == (16, 16, 3)
    assert main([str(src / "a.png"), str(tmp_path / "o.jpg"), *FAST]) == 0
    assert cv2.imread(str(tmp_path / "o.jpg"), cv2.IMREAD_UNCHANGED).shape == (16, 16, 3)
    assert any("cannot hold the input's alpha channel" in r.getMessage() for r in caplog.records)

"""Issue 12: inputs of more than 8 bits keep their finer levels.  The denoiser works on 8 bits;
the output is the input's own 16-bit picture plus the change the denoiser made, written at the
input's depth where the codec or format allows (H.264/HEVC 10-bit, FFV1, 16-bit PNG/TIFF)."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import IdentityEngine

from stream import cli, session

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet", "--temporal",
        "off"]
W, H = 256, 32


def gradient16(noise: float, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint16 grey ramp over 600 10-bit levels, with noise (10-bit units)."""
    x = np.linspace(200, 800, W) * 64
    g = np.tile(x, (H, 1)) + np.random.default_rng(seed).normal(0, noise * 64, (H, W))
    g = np.clip(np.round(g), 0, 65535).astype(np.uint16)
    return np.stack([g, g, g], axis=-1)


def write_10bit(path, fmt: str, n: int = 3, noise: float = 6.0) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, fmt
        for i in range(n):
            f = av.VideoFrame.from_ndarray(gradient16(noise, i), format="rgb48le")
            f = f.reformat(format=fmt)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def first_frame(path) -> tuple[str, np.ndarray]:
    """The encoder's format and the first frame's green channel in 10-bit units."""
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return f.format.name, f.to_ndarray(format="rgb48le")[..., 1].astype(float) / 64


@pytest.mark.parametrize("fmt, out, expect", [
    ("yuv444p10le", "o.mp4", "yuv444p10le"),   # H.264 High 4:4:4 at 10 bits
    ("yuv420p10le", "o.mp4", "yuv420p10le"),
    ("yuv420p10le", "o.mkv", "yuv420p10le"),
])
def test_10bit_in_10bit_out(tmp_path, fmt, out, expect):
    src = tmp_path / "g.mkv"
    write_10bit(src, fmt)
    assert cli.main([str(src), str(tmp_path / out), "--sigma", "6", *FAST]) == 0
    got_fmt, y = first_frame(tmp_path / out)
    _, x = first_frame(src)
    assert got_fmt == expect
    # more than 256 levels kept (this ramp has 150 at 8 bits), the brightness kept, and
    # denoised: the spread down each column (the ramp runs across) is smaller
    assert len(np.unique(np.round(y))) > 256
    assert abs(y.mean() - x.mean()) < 2
    assert y.std(axis=0).mean() < 0.5 * x.std(axis=0).mean()


def test_8bit_output_asked_for(tmp_path):
    src = tmp_path / "g.mkv"
    write_10bit(src, "yuv444p10le")
    out = tmp_path / "o.mp4"
    assert cli.main([str(src), str(out), "--sigma", "6", "--pix-fmt", "yuv444p", *FAST]) == 0
    fmt, y = first_frame(out)
    assert fmt == "yuv444p" and len(np.unique(np.round(y))) <= 256


def test_no_banding_on_a_clean_ramp(tmp_path, monkeypatch):
    """A clean 10-bit ramp through a do-nothing denoiser comes out as it went in (within
    the colour conversions), not in 8-bit steps of 4 levels."""
    monkeypatch.setattr(session, "open_engine", lambda opts: IdentityEngine())
    src = tmp_path / "g.mkv"
    write_10bit(src, "yuv444p10le", noise=0.0)
    out = tmp_path / "o.mkv"
    assert cli.main([str(src), str(out), "--codec", "ffv1", "--sigma", "1", "--quiet",
                     "--temporal", "off"]) == 0
    _, x = first_frame(src)
    fmt, y = first_frame(out)
    assert fmt == "yuv444p10le"
    assert np.abs(y - x).max() <= 1.0
    # no steps the input lacks (at 8 bits this ramp rises in steps of 4 levels)
    assert np.diff(y[0]).max() <= np.diff(x[0]).max() + 1


def test_codec_without_deep_formats_warns_and_writes_8_bits(tmp_path, caplog):
    src = tmp_path / "g.mkv"
    write_10bit(src, "yuv420p10le")
    out = tmp_path / "o.avi"
    assert cli.main([str(src), str(out), "--codec", "mpeg4", "--sigma", "6", *FAST]) == 0
    assert first_frame(out)[0] == "yuv420p"
    assert any("takes no format of more than 8 bits" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_image_in_16bit_out(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(session, "open_engine", lambda opts: IdentityEngine())
    rgb = gradient16(0.0)
    alpha = np.tile(np.linspace(0, 65535, W).astype(np.uint16), (H, 1))
    src = tmp_path / f"g{suffix}"
    cv2.imwrite(str(src), np.dstack([rgb[..., ::-1], alpha]))
    out = tmp_path / f"o{suffix}"
    assert cli.main([str(src), str(out), "--sigma", "1", "--quiet", "--temporal", "off"]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (H, W, 4)
    # the do-nothing denoiser leaves every 16-bit value as it was, alpha included
    assert np.array_equal(got[..., :3], rgb[..., ::-1]) and np.array_equal(got[..., 3], alpha)


def test_16bit_image_denoised(tmp_path):
    src = tmp_path / "g.png"
    rgb = gradient16(6.0)
    cv2.imwrite(str(src), rgb[..., ::-1])
    out = tmp_path / "o.png"
    assert cli.main([str(src), str(out), "--sigma", "6", *FAST]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16
    y, x = got[..., 1].astype(float) / 64, rgb[..., 1].astype(float) / 64
    assert len(np.unique(np.round(y))) > 256 and abs(y.mean() - x.mean()) < 2
    assert y.std(axis=0).mean() < 0.5 * x.std(axis=0).mean()

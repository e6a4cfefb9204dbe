"""Grey pictures (one channel, or three equal ones: a night-mode camera, a black-and-white
film): their noise is the same in all three channels the network sees, so it is told
``stream.grey.GAIN`` times the level, read by PCA."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from models.metrics import psnr
from stream import grey
from stream.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"


def grey_photo(name: str = "astronaut") -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(DATA / f"{name}_crop.png")), cv2.COLOR_BGR2GRAY)


def noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape) + 0.5, 0, 255).astype(np.uint8)


def test_is_grey():
    g = grey_photo()
    three = np.repeat(g[..., None], 3, axis=2)
    assert grey.is_grey(g) and grey.is_grey(three)
    jitter = three.astype(np.int16)
    jitter[..., 1] += np.random.default_rng(0).integers(-2, 3, g.shape)  # chroma rounding
    assert grey.is_grey(np.clip(jitter, 0, 255).astype(np.uint8))
    colour = cv2.imread(str(DATA / "astronaut_crop.png"))
    assert not grey.is_grey(colour)
    # independent noise of 2 levels per channel on a grey picture is colour noise
    assert not grey.is_grey(noisy(three, 2.0))
    # one pixel off, away from the sparse grid, is found by the whole look
    odd = three.copy()
    odd[5, 7, 2] = (int(odd[5, 7, 2]) + 40) % 256
    assert not grey.is_grey(odd)


def test_grey_frames_are_read_by_pca():
    g = np.repeat(noisy(grey_photo(), 20)[..., None], 3, axis=2)
    read = grey.reading(lambda image: 5.0)  # a stand-in for the learned reading
    assert abs(read(g) - 20) < 2.5
    assert read(cv2.imread(str(DATA / "coffee_crop.png"))) == 5.0


@pytest.mark.parametrize(("level", "args", "least", "before"), [
    (20, ["--sigma", "20"], 30.0, 26.90),
    (20, [], 30.0, 24.84),
    (0, [], 46.0, 43.88),
])
def test_grey_photo_through_the_product(tmp_path, capsys, level, args, least, before):
    """A one-channel PNG: white noise of ``level`` (0: the clean photo) through ``fast``;
    ``before`` is what the product gave before grey pictures were told the gain (dB)."""
    clean = grey_photo()
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(src), noisy(clean, level) if level else clean)
    assert main([str(src), str(out), "--temporal", "off", *args]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.ndim == 2
    assert psnr(got.astype(np.float64), clean.astype(np.float64), 255) >= least > before
    assert "grey (1 frames: told 1.73 times the level)" in capsys.readouterr().err


def test_monochrome_yuv_video_is_grey(tmp_path, capsys, read):
    """A colour container holding a grey picture (yuv420p, neutral chroma), as a camera in
    night mode records it: taken as grey, and denoised so (31.44 to 31.49 dB; 28.44 to 28.58
    before grey pictures were told the gain)."""
    clean = grey_photo()[:128, :192]
    frames = [noisy(clean, 15, seed=s) for s in range(4)]
    src = tmp_path / "night.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 192, 128, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, axis=2), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    out = tmp_path / "out.mkv"
    assert main([str(src), str(out), "--codec", "ffv1", "--sigma", "15", "--temporal", "off"]) == 0
    assert "grey (4 frames" in capsys.readouterr().err
    got = read(out)["frames"]
    assert len(got) == 4
    scores = [psnr(g.mean(axis=2), clean.astype(np.float64), 255) for g in got]
    assert min(scores) >= 30.0, scores

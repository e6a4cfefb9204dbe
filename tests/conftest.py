"""Shared fixtures: generated clips (with audio, VFR, rotation...), a tiny engine, data paths.

Test modules may ``from conftest import write_clip, moving_scene, ...``: the hook below makes
that name mean this file even after a sub-folder's own conftest.py was imported.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

# OpenCV before PyAV: a test module that imported av first (collected before
# tests/stream/test_preview_window.py) left OpenCV's window unable to open under Xvfb
# ("cannot open the preview window (timed out)"); cv2 loaded first, both work
import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
_THIS = sys.modules[__name__]


def pytest_configure(config: pytest.Config) -> None:
    # A shell that starts a job in the background (`cmd &`, some CI runners) leaves SIGINT
    # ignored, so Python never installs its Ctrl-C handler and neither do the subprocesses the
    # tests start (an ignored signal stays ignored across exec).  The Ctrl-C tests would then
    # hang; restore what an interactive run has.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collectstart(collector: pytest.Collector) -> None:
    # pytest imports every conftest.py as the module "conftest"; the last one wins.
    if isinstance(collector, pytest.Module):
        sys.modules["conftest"] = _THIS


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is missing")
    return DATA


def moving_scene(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Clean (H, W, 3) uint8 frames: smooth gradient background and a moving square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1),
                     0.5 + 0.5 * np.sin(xx / 7.0) * np.cos(yy / 9.0)], axis=-1)
    colour = rng.uniform(0.2, 0.9, size=3)
    frames = []
    size = max(4, min(width, height) // 3)
    for i in range(n):
        img = base.copy() * 0.8 + 0.1
        x0 = int((i * 3) % max(1, width - size))
        y0 = int((i * 2) % max(1, height - size))
        img[y0:y0 + size, x0:x0 + size] = colour
        frames.append(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    return frames


def add_noise(frames: list[np.ndarray], sigma: float, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape) + 0.5, 0, 255).astype(np.uint8)
            for f in frames]


def camera_noise(frames: list[np.ndarray], std: float = 12.0, seed: int = 5) -> list[np.ndarray]:
    """Coarse, colour-correlated noise as a camera's processing leaves it (demosaicking blurs
    the grain over a pixel or two, the channels share most of it): fresh every frame, std
    ``std`` a channel, clipped and rounded to 8 bits."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        n = 0.5 * rng.normal(0, 1, f.shape) + rng.normal(0, 1, f.shape[:2])[..., None]
        n = cv2.GaussianBlur(n.astype(np.float32), (0, 0), 1.2)
        out.append(np.clip(np.round(f + n / n.std() * std), 0, 255).astype(np.uint8))
    return out


def write_folder(folder: Path, images: list[np.ndarray]) -> None:
    """RGB frames as ``000.png``, ``001.png``... in a new folder."""

    folder.mkdir()
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def read_folder(folder: Path) -> list[np.ndarray]:
    """A folder's images in name order, RGB."""

    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.iterdir())]


@dataclass
class Clip:
    path: Path
    frames: list[np.ndarray]  # what was encoded (RGB)
    pts: list[int]
    time_base: Fraction


def write_clip(path: Path, frames: list[np.ndarray], *, rate: int = 25,
               pts: list[int] | None = None, time_base: Fraction | None = None,
               codec: str = "libx264", pix_fmt: str = "yuv420p", audio: bool = True,
               rotation: int = 0, color_range: int | None = None,
               colorspace: int | None = None, options: dict[str, str] | None = None,
               container_options: dict[str, str] | None = None) -> Clip:
    """Encode RGB frames with PyAV (+ a 440 Hz AAC tone as long as the video)."""
    import av

    time_base = time_base or Fraction(1, rate)
    pts = pts if pts is not None else list(range(len(frames)))
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        vs.codec_context.options = options or ({"preset": "ultrafast"} if "264" in codec else {})
        if color_range is not None:
            vs.codec_context.color_range = color_range
        if colorspace is not None:
            vs.codec_context.colorspace = colorspace
            vs.codec_context.color_primaries = colorspace
            vs.codec_context.color_trc = colorspace
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=48000, layout="mono")
        packets = []  # muxed in time order at the end, interleaved like a real file
        for img, p in zip(frames, pts):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            kw = {}
            if color_range is not None:
                kw["dst_color_range"] = color_range
            if colorspace is not None and colorspace in (1, 5):
                kw["dst_colorspace"] = colorspace
            vf = vf.reformat(format=pix_fmt, **kw)
            if color_range is not None:
                vf.color_range = color_range
            vf.pts = p
            vf.time_base = time_base
            packets += vs.encode(vf)
        packets += vs.encode(None)
        if aus is not None:
            seconds = float((pts[-1] + 1) * time_base) if pts else 0.0
            n = int(seconds * 48000)
            t = np.arange(n) / 48000.0
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp",
                                                layout="mono")
                af.sample_rate = 48000
                af.pts = start
                packets += aus.encode(af)
            packets += aus.encode(None)
        packets.sort(key=lambda pk: float(pk.dts * pk.time_base) if pk.dts is not None else 0)
        for pkt in packets:
            out.mux(pkt)
    return Clip(path, frames, pts, time_base)


@pytest.fixture
def make_clip() -> Callable[..., Clip]:
    return write_clip


@pytest.fixture(scope="session")
def clip_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """12 frames of 64x48 H.264 with AAC audio in .mp4."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    return write_clip(path, add_noise(moving_scene(12, 64, 48), 10), audio=True)


@pytest.fixture(scope="session")
def ffprobe() -> Callable[..., str]:
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.skip("ffprobe is not installed")

    def run(*args: str) -> str:
        res = subprocess.run([exe, "-v", "error", *args], capture_output=True, text=True,
                             check=False,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stderr.strip() == "", res.stderr
        return res.stdout

    return run


class IdentityEngine:
    """A stand-in engine (same interface as engines.open_engine's) for pipeline tests."""

    name = "identity"
    model = "identity"
    temporal = False

    def __init__(self) -> None:
        self.calls: list[float] = []

    def infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None = None
              ) -> np.ndarray:
        self.calls.append(float(np.asarray(sigma).ravel()[0]))
        return frames.copy()

    def close(self) -> None:
        pass


@pytest.fixture
def identity_engine() -> IdentityEngine:
    return IdentityEngine()


def read_video(path: Path) -> dict[str, object]:
    """Decode a file with PyAV: RGB frames, their times (Fractions), audio packet bytes."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times, rotation = [], [], 0
        audio: list[bytes] = []
        streams = [vs, *c.streams.audio]
        for pkt in c.demux(streams):
            if pkt.stream.type == "audio":
                if pkt.size:
                    audio.append(bytes(pkt))
                continue
            for f in pkt.decode():
                frames.append(f.to_ndarray(format="rgb24"))
                times.append(Fraction(f.pts) * f.time_base)
                rotation = int(f.rotation or 0)
        cc = vs.codec_context
        return {"frames": frames, "times": times, "audio": audio, "rotation": rotation,
                "color_range": int(cc.color_range), "colorspace": int(cc.colorspace),
                "size": (cc.width, cc.height)}


@pytest.fixture
def read() -> Callable[[Path], dict[str, object]]:
    return read_video

"""Make the bundled sample clip: public-domain photos, simulated camera motion, camera noise.

Reproduce the shipped file exactly (needs scikit-image for the photos)::

    python -m stream.samples.make_sample stream/samples/sample.mp4

Four shots of 0.96 s (astronaut, coffee, chelsea, rocket from ``skimage/data``; public domain
or CC0, see README in this folder), each a slow pan/zoom with a little hand-held jitter,
then Poisson-Gaussian sensor noise on a Bayer mosaic (``models.noise.camera``), 640x360,
25 fps, H.264 (x264 crf 24) with a quiet AAC tone so audio copying can be checked.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

SHOTS = ["astronaut", "coffee", "chelsea", "rocket"]
WIDTH, HEIGHT, FPS, SHOT_FRAMES = 640, 360, 25, 24
SHOT_NOISE = 0.004  # linear-light shot-noise gain: var = shot * lin + read**2
READ_NOISE = 0.012
SEED = 2026


def photo(name: str) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[..., :3])


def camera_path(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A pan/zoom across ``img`` with hand-held jitter, as (HEIGHT, WIDTH, 3) uint8 frames."""
    import cv2

    h, w = img.shape[:2]
    cover = max(WIDTH / w, HEIGHT / h) * 1.25  # room to move and zoom
    zoom0, zoom1 = cover, cover * rng.uniform(1.05, 1.15)
    dx, dy = rng.uniform(-1, 1, size=2)
    jitter = np.cumsum(rng.normal(0, 0.6, size=(n, 2)), axis=0)
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        s = zoom0 + (zoom1 - zoom0) * t
        # centre of the view in image coordinates, drifting along (dx, dy)
        cx = w / 2 + dx * t * 0.08 * w + jitter[i, 0]
        cy = h / 2 + dy * t * 0.08 * h + jitter[i, 1]
        angle = 0.6 * math.sin(2 * math.pi * t)  # degrees of roll
        m = cv2.getRotationMatrix2D((cx, cy), angle, s)
        m[0, 2] += WIDTH / 2 - cx
        m[1, 2] += HEIGHT / 2 - cy
        frames.append(cv2.warpAffine(img, m, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def add_camera_noise(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    import torch

    from models.noise import camera

    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    out = []
    for i in range(0, len(x), 8):
        noisy, _ = camera(x[i:i + 8], SHOT_NOISE, READ_NOISE, generator=gen)
        out.append((noisy * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    return [f for batch in out for f in batch]


def tone(seconds: float, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    notes = [220.0, 277.18, 329.63, 440.0]  # one note per shot
    freq = np.array(notes)[np.minimum((t * FPS / SHOT_FRAMES).astype(int), len(notes) - 1)]
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return (0.15 * np.sin(phase)).astype(np.float32)[None]


def write(path: Path, frames: list[np.ndarray]) -> None:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.codec_context.options = {"crf": "24", "preset": "slow"}
        vs.codec_context.colorspace = vs.codec_context.color_primaries = 1  # BT.709
        vs.codec_context.color_trc = 1
        vs.codec_context.color_range = 1
        aus = out.add_stream("aac", rate=48000, layout="mono")
        aus.bit_rate = 64000
        packets = []
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1)
            vf.pts = i
            packets += vs.encode(vf)
        packets += vs.encode(None)
        samples = tone(len(frames) / FPS)
        for start in range(0, samples.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 48000, start
            packets += aus.encode(af)
        packets += aus.encode(None)
        packets.sort(key=lambda p: float(p.dts * p.time_base) if p.dts is not None else 0.0)
        for p in packets:
            out.mux(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.samples.make_sample",
                                description=__doc__.split("\n")[0])
    p.add_argument("output", type=Path)
    args = p.parse_args(argv)
    rng = np.random.default_rng(SEED)
    clean: list[np.ndarray] = []
    for name in SHOTS:
        clean += camera_path(photo(name), SHOT_FRAMES, rng)
    write(args.output, add_camera_noise(clean, SEED))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

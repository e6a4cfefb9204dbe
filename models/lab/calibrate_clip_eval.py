"""Clip path of camera calibration: a 20 s 640x360 still scene from a replayed camera outside
the training ranges, calibrated through the product, tested on other pictures of that camera.

    python -m models.lab.calibrate_clip_eval [FRAMES]        # FRAMES default 500 (20 s at 25 fps)

The camera: ``models.noise.camera_isp`` with shot gain 5e-2 (trained 1e-4..2e-2), read 2e-3, red
gain 2.8 (1.9..2.4), blue 1.3 (1.5..1.9), no JPEG; the scene the first DAVIS ``bus`` frame.
Writes the clip as PNGs, runs ``python -m stream calibrate CLIP/ --name synth --seconds 20``
(timed), then ``python -m stream test/ out/ --temporal off`` with and without ``--profile
synth`` on two other ``bus`` frames and four CBSD68 photos through the same camera, into
/tmp/clipexp/run (result.json).
"""
import dataclasses
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from models.data import DEFAULT_DATA, read_rgb, split_paths
from models.metrics import psnr
from models.noise import camera_isp, sample_isp


def bus_frames() -> list[str]:
    return sorted(glob.glob(str(DEFAULT_DATA / "video" / "davis-bus" / "*.jpg")))


def camera() -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The still scene (640 x 360 RGB) and the camera: ``noisy(img)``, fresh noise each call."""
    clean = cv2.resize(read_rgb(bus_frames()[0]), (640, 360), interpolation=cv2.INTER_AREA)
    cam = dataclasses.replace(sample_isp(torch.Generator().manual_seed(3)), shot=5e-2, read=2e-3, red_gain=2.8, blue_gain=1.3)
    gen = torch.Generator().manual_seed(1)

    def noisy(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
        y, _ = camera_isp(x, gen, jpeg_share=0.0, cams=[cam])
        return (y[0] * 255).round().byte().permute(1, 2, 0).numpy()

    return clean, noisy


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(1)
    out = Path("/tmp/clipexp/run"); out.mkdir(parents=True, exist_ok=True)
    n = int(argv[0]) if argv else 500
    assert DEFAULT_DATA.is_dir(), f"{DEFAULT_DATA} is missing"
    bus = bus_frames()
    clean, noisy = camera()
    frames = out / "clip"; frames.mkdir(exist_ok=True)
    t0 = time.time()
    for i in range(n):
        cv2.imwrite(str(frames / f"{i:04d}.png"), noisy(clean)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    print("synth", time.time() - t0, flush=True)
    test = out / "test"; test.mkdir(exist_ok=True)
    refs = {}
    pics = [cv2.resize(read_rgb(bus[k]), (640, 360), interpolation=cv2.INTER_AREA) for k in (30, 60)]
    pics += [read_rgb(p) for p in split_paths(DEFAULT_DATA, "cbsd68")[:4]]
    for i, c in enumerate(pics):
        cv2.imwrite(str(test / f"t{i}.png"), noisy(c)[..., ::-1]); refs[f"t{i}"] = c
    env = {**os.environ, "XDG_CACHE_HOME": str(out / "cache"), "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "stream", "calibrate", str(frames) + "/", "--name", "synth", "--seconds", "20", "-y"], env=env, check=True)
    cal_min = (time.time() - t0) / 60
    res = {"calibrate_minutes_wall": cal_min, "frames": n}
    for name, extra in (("default", []), ("profile", ["--profile", "synth"])):
        o = out / name
        subprocess.run([sys.executable, "-m", "stream", str(test) + "/", str(o) + "/", "--temporal", "off", "--threads", "1", "-q", "-y", *extra], env=env, check=True)
        res[name] = {k: psnr(read_rgb(o / f"{k}.png"), v, 255.0) for k, v in refs.items()}
    res["noisy"] = {k: psnr(read_rgb(test / f"{k}.png"), v, 255.0) for k, v in refs.items()}
    res["mean"] = {k: float(np.mean(list(res[k].values()))) for k in ("noisy", "default", "profile")}
    res["profile_json"] = json.loads((out / "cache/denoise-stream/profiles/synth/profile.json").read_text())
    print(json.dumps(res["mean"]), cal_min)
    (out / "result.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

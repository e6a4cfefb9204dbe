"""The video clips ``python -m models eval-video`` measures on: frames from a folder or a video
file, the still-camera clip made from photos, and the standard suite (``--suite``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import folder_paths, read_rgb


def load_frames(source: Path, limit: int | None = None, start: int = 0) -> list[np.ndarray]:
    """Clean RGB uint8 frames from a folder of images or a video file (OpenCV)."""
    if source.is_dir():
        paths = folder_paths(source)[start:]
        return [read_rgb(p) for p in paths[:limit]]
    from .temporal_data import read_video_cv2

    frames = read_video_cv2(source, None if limit is None else start + limit)[start:]
    if not frames:
        raise ValueError(f"no frames decoded from {source}")
    return frames


# The still-camera clip: a CBSD68 photo (never trained on) as the fixed scene, and three
# "walkers" (soft ellipses textured from other CBSD68 photos) crossing it at 0.8..3 px a frame
# with a little bobbing, as a surveillance camera or a webcam on a desk sees people.
STILL_BACKGROUND = "108005"
STILL_WALKERS = (  # texture photo, radii (x, y), start (x, y), velocity (x, y) px a frame
    ("119082", (16, 38), (40.0, 150.0), (2.1, 0.0)),
    ("130026", (22, 30), (420.0, 220.0), (-3.0, -0.3)),
    ("147091", (10, 14), (150.0, 70.0), (0.8, 0.25)),
)


def still_clip(data: Path, n: int = 40) -> list[np.ndarray]:
    """A still-camera clip made from photos: (320, 480, 3) uint8 frames, deterministic."""
    import cv2

    def photo(i: str) -> np.ndarray:
        hits = sorted((data / "bsds500").glob(f"*/{i}.jpg"))
        if not hits:
            raise FileNotFoundError(f"photo {i} not found under {data}/bsds500")
        img = read_rgb(hits[0])
        return img if img.shape[0] <= img.shape[1] else np.ascontiguousarray(img.transpose(1, 0, 2))

    bg = photo(STILL_BACKGROUND)[:320, :480].astype(np.float32)
    h, w = bg.shape[:2]
    textures = [photo(t)[:320, :480].astype(np.float32) for t, *_ in STILL_WALKERS]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    frames = []
    for t in range(n):
        img = bg.copy()
        for tex, (_, (rx, ry), (x0, y0), (vx, vy)) in zip(textures, STILL_WALKERS):
            cx, cy = x0 + vx * t, y0 + vy * t + 2.0 * np.sin(t * 0.7 + x0)
            # the texture moves with the walker (sub-pixel, bilinear)
            shift = np.float32([[1, 0, cx - w / 2], [0, 1, cy - h / 2]])
            layer = cv2.warpAffine(tex, shift, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
            mask = np.clip(4 * (1 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2), 0, 1)[..., None]
            img = img * (1 - mask) + layer * mask
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


# The standard clips (``--suite``), both kinds of camera, none of them trained on:
# (name, what the camera does, frames source under --data or "still", start, count)
SUITE = (
    ("bus", "moving: pans with a bus", "video/davis-bus", 60, 20),
    ("bikes", "moving: slow and fast pans, a cut", "video/bikes.mp4", 100, 60),
    ("carphone", "still, a talking head and a window", "video/carphone_pristine.mp4", 0, 60),
    ("still", "still, walkers over a photo (made here)", "still", 0, 40),
)


def suite_frames(data: Path, name: str, limit: int | None = None) -> list[np.ndarray]:
    for clip, _, source, start, count in SUITE:
        if clip == name:
            count = count if limit is None else min(count, limit)
            return still_clip(data, count) if source == "still" else \
                load_frames(data / source, count, start)
    raise ValueError(f"unknown suite clip {name!r}; expected one of {[c[0] for c in SUITE]}")

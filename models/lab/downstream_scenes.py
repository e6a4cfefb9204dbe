"""The pictures ``models eval-downstream`` measures detectors on: photos in which the face or
people detector finds something when clean, and QR / ArUco scenes rendered here (a code warped
in perspective and blurred onto a photo, seeded), with the noise they are given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..data import IMAGE_EXTS, read_rgb

if TYPE_CHECKING:
    from .eval_downstream import Detectors

ARUCO_DICT = cv2.aruco.DICT_4X4_50


@dataclass
class Scene:
    id: str
    clean: np.ndarray  # RGB uint8
    kind: str  # "people", "qr", "aruco"
    payload: object = None  # QR text or set of ArUco ids
    ref: dict[str, np.ndarray] = field(default_factory=dict)  # clean detections per detector


def image_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"--images: expected a folder of images, got {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise ValueError(f"--images: no images ({', '.join(sorted(IMAGE_EXTS))}) in {folder}")
    return paths


def pick_people(paths: list[Path], det: Detectors, limit: int) -> list[Scene]:
    """Photos in which the face cascade or the HOG people detector finds something when clean."""
    scenes: list[Scene] = []
    if det.face is None and det.hog is None:
        return scenes
    for p in paths:
        if len(scenes) >= limit:
            break
        rgb = read_rgb(p)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        ref = {"face": det.faces(bgr), "person": det.people(bgr)}
        if len(ref["face"]) or len(ref["person"]):
            scenes.append(Scene(p.stem, rgb, "people", ref=ref))
    return scenes


def _background(paths: list[Path], rng: np.random.Generator, size: tuple[int, int] = (360, 640)) -> np.ndarray:
    rgb = read_rgb(paths[int(rng.integers(len(paths)))])
    return cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)


def _paste(bg: np.ndarray, patch: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Warp a square grey patch (with its quiet zone) onto bg in random perspective."""
    h, w = bg.shape[:2]
    x0 = rng.uniform(0.05 * w, w - 1.25 * side)
    y0 = rng.uniform(0.05 * h, h - 1.25 * side)
    jitter = rng.uniform(-0.15, 0.15, (4, 2)) * side
    dst = np.float32([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]) + jitter
    n = patch.shape[0]
    src = np.float32([[0, 0], [n, 0], [n, n], [0, n]])
    hmat = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    rgb_patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2RGB)
    warped = cv2.warpPerspective(rgb_patch, hmat, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((n, n), 255, np.uint8), hmat, (w, h), flags=cv2.INTER_LINEAR)
    a = (mask.astype(np.float32) / 255)[..., None]
    return (bg * (1 - a) + warped * a).round().astype(np.uint8)


def render_qr(paths: list[Path], n: int, seed: int) -> list[Scene]:
    rng = np.random.default_rng(seed)
    enc = cv2.QRCodeEncoder.create()
    scenes = []
    for i in range(n):
        text = f"denoise-stream {seed}-{i} {int(rng.integers(10**6)):06d}"
        code = enc.encode(text)  # one pixel per module, quiet zone included
        patch = cv2.resize(code, (code.shape[1] * 8, code.shape[0] * 8), interpolation=cv2.INTER_NEAREST)
        img = _paste(_background(paths, rng), patch, rng, side=int(rng.uniform(110, 170)))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.3))
        scenes.append(Scene(f"qr{i}", img, "qr", payload=text))
    return scenes


def render_aruco(paths: list[Path], n: int, seed: int) -> list[Scene]:
    rng = np.random.default_rng(seed + 1)
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICT)
    scenes = []
    for i in range(n):
        img = _background(paths, rng)
        ids = {int(v) for v in rng.choice(50, size=3, replace=False)}
        for k, mid in enumerate(sorted(ids)):
            marker = cv2.aruco.generateImageMarker(dictionary, mid, 60)
            patch = cv2.copyMakeBorder(marker, 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)
            side = int(rng.uniform(45, 75))
            # one marker per third of the frame, so they do not overlap
            sub = img[:, k * 213:(k + 1) * 213]
            img[:, k * 213:(k + 1) * 213] = _paste(sub, patch, rng, side=min(side, 150))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.1))
        scenes.append(Scene(f"aruco{i}", img, "aruco", payload=ids))
    return scenes


def add_noise(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).round().astype(np.uint8)

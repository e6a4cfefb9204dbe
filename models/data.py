"""Training and evaluation images: the standard splits in ../shared/data, loaded once."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import torch

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; raises ValueError for a file OpenCV cannot decode."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(img[..., ::-1])


def split_paths(data: Path, split: str) -> list[Path]:
    """Image files of a standard split (``cbsd432`` or ``cbsd68``) under a data folder."""
    ids = (data / "splits" / f"{split}.txt").read_text().split()
    found = {p.stem: p for sub in ("train", "val", "test") for p in (data / "bsds500" / sub).glob("*.jpg")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {split} missing under {data}, e.g. {missing[0]}")
    return [found[i] for i in ids]


def name_key(path: Path) -> tuple[list[tuple[int, int | str]], str]:
    """Name order as a person reads it: numbers by value (``f2.png`` before ``f10.png``), the
    rest case-blind, so frames saved without zero padding play in order (the product's
    folders and the lab's)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [(0, int(x)) if x.isdigit() else (1, x) for x in parts if x], path.name


def folder_paths(folder: Path) -> list[Path]:
    """A folder's images in name order (``name_key``): a clip's frames in play order."""
    paths = sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS), key=name_key)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    return paths


def pair_paths(folder: Path, half: str = "all") -> list[tuple[Path, Path]]:
    """(noisy, clean) pairs of a real-noise folder (``*_real.*`` / ``*_mean.*``, as PolyU names
    them), in name order.  ``half`` ``tune`` or ``test`` splits by scene (the name less its
    trailing shot number), alternating over the sorted scenes, so no scene is in both halves:
    tune on one half, report on the other."""
    if half not in ("all", "tune", "test"):
        raise ValueError(f"expected half all|tune|test, got {half!r}")
    reals = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS and "_real" in p.stem)
    pairs = [(p, p.with_name(p.name.replace("_real", "_mean"))) for p in reals]
    pairs = [(n, c) for n, c in pairs if c.exists()]
    if not pairs:
        raise FileNotFoundError(f"no *_real/*_mean image pairs in {folder}")
    if half == "all":
        return pairs
    scenes = sorted({scene_of(n) for n, _ in pairs})
    keep = set(scenes[0 if half == "tune" else 1::2])
    return [(n, c) for n, c in pairs if scene_of(n) in keep]


def scene_of(noisy: Path) -> str:
    """The scene of a real pair's noisy image, its name less the shot number:
    Canon5D2_5_160_3200_chair_11_real -> Canon5D2_5_160_3200_chair."""
    return noisy.stem.replace("_real", "").rstrip("_").rsplit("_", 1)[0]


def list_digest(paths: list[Path]) -> str:
    """Short hash of the file names and bytes: pins exactly which data made a model."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


class PatchSampler:
    """Random flipped/rotated crops from images held in (device) memory as uint8."""

    def __init__(self, paths: list[Path], device: torch.device, seed: int = 0) -> None:
        self.images = [torch.from_numpy(read_rgb(p)).permute(2, 0, 1).contiguous().to(device) for p in paths]
        self.device = device
        self.gen = torch.Generator().manual_seed(seed)

    def state(self) -> torch.Tensor:
        return self.gen.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state)

    def sample(self, batch: int, size: int) -> torch.Tensor:
        """(batch, 3, size, size) float32 in [0, 1] on the sampler's device."""
        idx = torch.randint(len(self.images), (batch,), generator=self.gen).tolist()
        aug = torch.randint(8, (batch,), generator=self.gen).tolist()
        crops = []
        for i, a in zip(idx, aug):
            img = self.images[i]
            _, h, w = img.shape
            y = int(torch.randint(h - size + 1, (1,), generator=self.gen))
            x = int(torch.randint(w - size + 1, (1,), generator=self.gen))
            c = img[:, y:y + size, x:x + size]
            if a & 1:
                c = c.flip(-1)
            crops.append(torch.rot90(c, a >> 1, dims=(-2, -1)))
        return torch.stack(crops).float().div_(255)

"""Scene cuts: a new shot (or an unrelated photo in a folder) gets its own noise estimate."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from stream.frame import Frame
from stream.processor import Processor
from stream.scenecut import SceneCuts

ROOT = Path(__file__).resolve().parents[1] / "data"


def _photo(name: str) -> np.ndarray:
    return cv2.imread(str(ROOT / name))[..., ::-1][:96, :128].copy()


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_cuts_between_unrelated_photos_not_within_a_pan() -> None:
    a, b = _photo("astronaut_crop.png"), _photo("coffee_crop.png")
    cuts = SceneCuts()
    assert cuts(_noisy(a, 20, 0)) is True  # the first frame starts a shot
    # a pan: the same picture shifted 2 px a frame, fresh noise each time
    pan = [cuts(_noisy(np.roll(a, 2 * i, axis=1), 20, i)) for i in range(1, 8)]
    assert pan == [False] * 7
    assert cuts(_noisy(b, 20, 9)) is True
    assert cuts(_noisy(b, 5, 10)) is False  # same picture, other noise level: not a cut


class _Identity:
    temporal = False

    def infer(self, frames: np.ndarray, sigma: np.ndarray, prev: object = None) -> np.ndarray:
        return frames


def test_folder_of_unrelated_photos_gets_one_estimate_each() -> None:
    a, b = _photo("astronaut_crop.png"), _photo("coffee_crop.png")
    frames = {4.0: _noisy(a, 4, 1), 30.0: _noisy(b, 30, 2)}
    # a stand-in estimator that reads the level the frame was made with
    est = {id(frames[4.0]): 4.0, id(frames[30.0]): 30.0}
    proc = Processor(_Identity(), sigma=None, estimator=lambda img: est[id(img)])
    seq = [frames[4.0], frames[30.0], frames[4.0]]
    out = [proc(Frame(image=img, index=i)) for i, img in enumerate(seq)]
    assert [f.sigma for f in out] == [4.0, 30.0, 4.0]  # no smoothing across the photos
    assert proc.shots == 3

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


def test_one_scene_at_several_noise_levels_in_a_folder_gets_one_estimate_each() -> None:
    """The same scene shot at ISO 1600, 6400 and 3200 in one folder is no cut by content, but
    each picture's own reading differs from the last one's by more than ``LEVEL_JUMP`` times:
    a new shot each, read afresh.  Frames of a video (no file name) keep the smoothed level."""
    a = _photo("astronaut_crop.png")
    levels = [5.0, 20.0, 10.0, 11.0]  # the last within LEVEL_JUMP of the one before
    frames = [_noisy(a, s, i) for i, s in enumerate(levels)]
    est = {id(f): s for f, s in zip(frames, levels)}
    proc = Processor(_Identity(), sigma=None, estimator=lambda img: est[id(img)])
    out = [proc(Frame(image=img, index=i, name=f"shot{i}.png")) for i, img in enumerate(frames)]
    assert [f.sigma for f in out] == [5.0, 20.0, 10.0, 10.0]  # the fourth: 11 not read (every 15)
    assert proc.shots == 3
    video = Processor(_Identity(), sigma=None, estimator=lambda img: est[id(img)])
    out = [video(Frame(image=img, index=i)) for i, img in enumerate(frames)]
    assert [f.sigma for f in out] == [5.0] * 4 and video.shots == 1


def test_one_scene_at_several_noise_levels_through_the_product(tmp_path) -> None:
    """As a folder, each picture comes out as it does alone (``fast``, its own reading)."""
    from models.metrics import psnr
    from stream.cli import main

    clean = cv2.imread(str(ROOT / "astronaut_crop.png"))
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    for name, s in (("iso1600", 5), ("iso6400", 20), ("iso3200", 10)):
        noisy = np.clip(np.rint(clean + rng.normal(0, s, clean.shape)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(src / f"{name}.png"), noisy)
    assert main([str(src), str(tmp_path / "folder"), "--temporal", "off", "-q"]) == 0
    for name in ("iso1600", "iso3200", "iso6400"):
        alone = tmp_path / f"{name}.png"
        assert main([str(src / f"{name}.png"), str(alone), "--temporal", "off", "-q"]) == 0
        got = cv2.imread(str(tmp_path / "folder" / f"{name}.png"))
        assert np.array_equal(got, cv2.imread(str(alone))), name
    # (before each picture was read: iso6400 24.66 dB in the folder against 32.44 alone)
    assert psnr(got.astype(np.float64), clean.astype(np.float64), 255) > 32.0

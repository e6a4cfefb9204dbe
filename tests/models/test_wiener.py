"""The Wiener pass (models.wiener) and where the processor runs it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models import wiener as W
from models.metrics import psnr
from stream.frame import Frame
from stream.processor import Processor

ROOT = Path(__file__).resolve().parents[1] / "data"


def _photo() -> np.ndarray:
    return cv2.imread(str(ROOT / "astronaut_crop.png"))[..., ::-1].copy()


def _noisy(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)


def test_a_blurred_pilot_gets_its_detail_back_from_the_noisy_frame() -> None:
    clean = _photo()
    noisy = _noisy(clean, 10.0)
    pilot = cv2.GaussianBlur(noisy, (0, 0), 1.2)  # a denoiser that smooths detail away
    out = W.wiener(noisy, pilot, 10.0)
    assert out.shape == clean.shape and out.dtype == np.float32
    got = psnr(np.clip(np.rint(out), 0, 255), clean, 255.0)
    assert got > psnr(pilot, clean, 255.0) + 1.0
    assert got > psnr(noisy, clean, 255.0) + 3.0


def test_a_clean_frame_comes_back_and_a_level_map_equals_its_number() -> None:
    clean = _photo()
    same = W.wiener(clean, clean, 1.0)  # told a level of 1: only coefficients under it go
    assert psnr(np.clip(np.rint(same), 0, 255), clean, 255.0) > 45.0
    pilot = cv2.GaussianBlur(clean, (0, 0), 2.0)
    noisy = _noisy(clean, 15.0, seed=3)
    flat = W.wiener(noisy, pilot, 15.0)
    mapped = W.wiener(noisy, pilot, np.full(clean.shape[:2], 15.0, np.float32))
    assert np.allclose(flat, mapped, atol=1e-3)
    # a map: where it says more noise, less of the noisy frame is kept
    half = np.full(clean.shape[:2], 2.0, np.float32)
    half[:, clean.shape[1] // 2:] = 40.0
    out = W.wiener(noisy, pilot, half)
    left, right = slice(0, clean.shape[1] // 2 - 8), slice(clean.shape[1] // 2 + 8, None)
    def gap(a: np.ndarray, b: np.ndarray, side: slice) -> float:
        return float(np.abs(a[:, side] - b[:, side].astype(np.float32)).mean())
    assert gap(out, noisy, left) < gap(out, noisy, right) - 1.0
    assert gap(out, pilot, right) < gap(out, pilot, left) - 1.0


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (9, 130), (5, 5)])
def test_any_size_keeps_its_shape(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    pilot = cv2.blur(noisy, (3, 3))
    out = W.wiener(noisy, pilot, 20.0)
    assert out.shape == noisy.shape
    if min(size) < W.BLOCK:  # no whole block: the pilot as it is
        assert np.array_equal(out, pilot.astype(np.float32))


@pytest.mark.parametrize("rows", [16, 24])
def test_strips_give_the_whole_frame_s_values(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worked out in strips (each with the rows whose blocks reach into it) the estimate is the
    one of the whole frame at once, for a level and a map, whatever the last strip's height."""
    clean = _photo()[:75]
    noisy = _noisy(clean, 15.0, seed=5)
    pilot = cv2.GaussianBlur(noisy, (0, 0), 1.0)
    level = np.linspace(5.0, 30.0, clean.shape[0], dtype=np.float32)[:, None].repeat(clean.shape[1], 1)
    whole = [W.wiener(noisy, pilot, 15.0), W.wiener(noisy, pilot, level)]
    monkeypatch.setattr(W, "ROWS", rows)
    for told, full in zip((15.0, level), whole):
        strips = W.wiener(noisy, pilot, told)
        assert np.abs(strips - full).max() < 1e-3
        assert np.abs(full - pilot).mean() > 1.0  # the pass did something to compare


def test_it_runs_on_one_torch_thread_and_gives_the_pool_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside the engine, decoder and encoder, torch's pool made the pass 2 to 15 times slower
    (``models.threads``): it works on one thread, and the caller's pool size is restored, also
    when the pass fails."""
    import torch

    clean = _photo()[:40, :40]
    noisy = _noisy(clean, 15.0)
    inside: list[int] = []
    real = W._wiener

    def spy(*args: object) -> np.ndarray:
        inside.append(torch.get_num_threads())
        return real(*args)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(W, "_wiener", spy)
        W.wiener(noisy, clean, 15.0)
        assert inside and set(inside) == {1}
        assert torch.get_num_threads() == 2

        def fails(*args: object) -> np.ndarray:
            raise RuntimeError("boom")

        monkeypatch.setattr(W, "_wiener", fails)
        with pytest.raises(RuntimeError):
            W.wiener(noisy, clean, 15.0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_refine_moves_the_share_asked_and_the_share_follows_the_level() -> None:
    clean = _photo()
    noisy = _noisy(clean, 10.0, seed=2)
    pilot = cv2.GaussianBlur(noisy, (0, 0), 1.2)
    assert W.refine(noisy, pilot, 10.0, 0.0) is pilot
    full = W.refine(noisy, pilot, 10.0, 1.0)
    assert np.array_equal(full, np.clip(np.rint(W.wiener(noisy, pilot, 10.0)), 0, 255).astype(np.uint8))
    half = W.refine(noisy, pilot, 10.0, 0.5).astype(np.float32)
    est = W.wiener(noisy, pilot, 10.0)
    assert np.abs(half - np.clip(pilot + 0.5 * (est - pilot), 0, 255)).max() <= 0.5 + 1e-3
    points = W.SHARE["fast"]
    assert W.share_for("fast", points[0][0]) == points[0][1]
    assert W.share_for("fast", 1000.0) == points[-1][1]  # flat beyond the last point
    mid = (points[-2][0] + points[-1][0]) / 2
    assert W.share_for("fast", mid) == pytest.approx((points[-2][1] + points[-1][1]) / 2)
    assert W.share_for("fast", 0.0) == 0.0 and W.share_for("no-such-model", 10.0) == 0.0
    shares = [W.share_for(name, level) for name in W.SHARE for level in (5.0, 50.0)]
    assert all(0.0 <= s <= 1.0 for s in shares)
    for name in W.SHARE:  # never more of the estimate on heavier noise
        assert W.share_for(name, 50.0) <= W.share_for(name, 15.0) <= W.share_for(name, 5.0)


class Smoother:
    """An engine stand-in that blurs (a denoiser that loses detail) and counts its calls."""

    model = "fast"
    temporal = False

    def __init__(self) -> None:
        self.calls = 0

    def infer(self, frames: np.ndarray, sigma: np.ndarray, prev: object = None) -> np.ndarray:
        self.calls += 1
        return np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in frames])


def _camera_like(clean: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    n = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (0, 0), 0.8)
    noisy = np.clip(clean + n * (5 / n.std()), 0, 255).round().astype(np.uint8)
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(noisy[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 50])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def test_the_processor_runs_it_on_white_noise_only_when_asked() -> None:
    clean = _photo()
    noisy = _noisy(clean, 10.0, seed=4)
    frame = Frame(image=noisy, index=0, pts=None, sequence=0)
    plain = Processor(Smoother(), sigma=10.0)(frame).image
    proc = Processor(Smoother(), sigma=10.0, wiener=True)
    refined = proc(frame).image
    assert proc.wiener_frames == 1
    assert psnr(refined, clean, 255.0) > psnr(plain, clean, 255.0) + 1.0
    share = W.share_for("fast", 10.0)
    assert np.array_equal(refined, W.refine(noisy, plain, 10.0, share))
    # coarse camera noise: the phase split runs, and the Wiener pass runs on its sub-images
    # only (where the noise is about white), never on the frame's own pass
    coarse = Frame(image=_camera_like(clean), index=0, pts=None, sequence=1)
    seen: list[tuple[tuple[int, ...], float]] = []
    real_refine = W.refine

    def spy(noisy: np.ndarray, pilot: np.ndarray, level: object, share: float) -> np.ndarray:
        seen.append((noisy.shape, float(np.mean(level))))
        return real_refine(noisy, pilot, level, share)
    W.refine = spy  # type: ignore[assignment]
    try:
        split = proc(coarse)
    finally:
        W.refine = real_refine  # type: ignore[assignment]
    assert proc.coarse_frames == 1 and proc.wiener_frames == 2
    h, w = clean.shape[:2]
    assert seen and all(shape[0] < h and shape[1] < w for shape, _ in seen)
    assert {shape for shape, _ in seen} <= {(h // 2, w // 2, 3), (h // 4, w // 4, 3)}
    # told SPLIT times what the sub-images were told (the split's factor times the level)
    assert {round(level, 3) for _, level in seen} == {round(10.0 * proc.split_factor * W.SPLIT, 3)}
    off = Processor(Smoother(), sigma=10.0)(coarse).image
    assert not np.array_equal(split.image, off)
    # a recurrent model refines its previous output: never
    twin = Smoother()
    twin.temporal = True  # type: ignore[misc]
    assert not Processor(twin, sigma=10.0, wiener=True, temporal=None).wiener
    # a model with no measured share: no pass on either path, and none counted
    other = Smoother()
    other.model = "fast-rep"  # type: ignore[misc]
    for frame_in in (frame, coarse):
        proc = Processor(other, sigma=10.0, wiener=True)
        got = proc(frame_in).image
        assert np.array_equal(got, Processor(other, sigma=10.0)(frame_in).image)
        assert not proc.wiener and proc.wiener_frames == 0
    assert proc.coarse_frames == 1  # the coarse frame was split, without the pass

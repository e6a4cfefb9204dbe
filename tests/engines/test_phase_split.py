"""Coarse noise: the 2 x 2 phase split (engines.phase_split), its reading
(models.estimate.coarseness) and the processor's ``--coarse-noise`` modes."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engines import phase_split
from models.estimate import coarseness
from models.metrics import psnr
from stream.frame import Frame
from stream.processor import Processor

ROOT = Path(__file__).resolve().parents[1] / "data"


def _photo() -> np.ndarray:
    return cv2.imread(str(ROOT / "astronaut_crop.png"))[..., ::-1].copy()


def _camera_like(clean: np.ndarray, seed: int = 1) -> np.ndarray:
    """Grain of 5 levels blurred over a pixel, then JPEG at quality 50, as a camera's
    processing leaves it: little noise left at the finest scale, much at the next."""
    rng = np.random.default_rng(seed)
    n = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (0, 0), 0.8)
    noisy = np.clip(clean + n * (5 / n.std()), 0, 255).round().astype(np.uint8)
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(noisy[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 50])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


class Recorder:
    """An engine stand-in that returns its input and records the shapes and levels it got."""

    model = "fast"
    temporal = False

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []

    def infer(self, frames: np.ndarray, sigma: np.ndarray, prev: object = None) -> np.ndarray:
        self.calls.append((frames.shape, np.asarray(sigma).copy()))
        return np.clip(np.asarray(frames), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("size", [(31, 45), (32, 48), (1, 1), (2, 3)])
def test_split_of_an_identity_gives_the_frame_back_at_any_size(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, *size, 3), dtype=np.uint8)
    rec = Recorder()
    out = phase_split.run_split(rec.infer, frames, np.array([5.0, 7.0], np.float32), factor=1.4)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.array_equal(out, frames)
    assert len(rec.calls) == 4
    h, w = (size[0] + 1) // 2, (size[1] + 1) // 2
    assert all(shape == (2, h, w, 3) for shape, _ in rec.calls)
    assert np.allclose(rec.calls[0][1], [7.0, 9.8])  # told factor x the level


def test_split_takes_a_per_pixel_level_map_phase_by_phase() -> None:
    frames = np.zeros((1, 4, 6, 3), np.uint8)
    level = np.arange(24, dtype=np.float32).reshape(1, 4, 6)
    rec = Recorder()
    phase_split.run_split(rec.infer, frames, level)
    maps = [s for _, s in rec.calls]
    assert [m.shape for m in maps] == [(1, 2, 3)] * 4
    assert np.array_equal(maps[0], level[:, 0::2, 0::2])
    assert np.array_equal(maps[3], level[:, 1::2, 1::2])


@pytest.mark.parametrize("size", [(31, 45), (32, 48), (1, 1), (2, 3)])
def test_the_4x4_split_of_an_identity_gives_the_frame_back_at_any_size(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
    level = rng.uniform(1, 30, (1, *size)).astype(np.float32)  # a per-pixel map
    rec = Recorder()
    out = phase_split.run_deep(rec.infer, frames, level)
    assert out.dtype == np.uint8 and np.array_equal(out, frames)
    assert len(rec.calls) == 16
    h, w = (size[0] + 3) // 4, (size[1] + 3) // 4
    assert all(shape == (1, h, w, 3) for shape, _ in rec.calls)
    if size[0] % 4 == 0 and size[1] % 4 == 0:  # each sub-image is told its own pixels' levels
        assert np.array_equal(rec.calls[0][1], level[:, 0::4, 0::4])
        assert np.array_equal(rec.calls[-1][1], level[:, 3::4, 3::4])


def test_mean_is_the_rounded_mean_and_the_blend_takes_a_helper_split() -> None:
    a = np.array([0, 1, 254, 255, 10], np.uint8)
    b = np.array([1, 1, 255, 255, 13], np.uint8)
    assert phase_split.mean([a, b]).tolist() == [1, 1, 255, 255, 12]
    assert phase_split.mean([a, b, np.array([2, 4, 0, 255, 13], np.uint8)]).tolist() == [1, 2, 170, 255, 12]
    frames = np.full((1, 6, 8, 3), 90, np.uint8)
    main, helper = Recorder(), Recorder()
    out = phase_split.run(main.infer, frames, np.array([5.0], np.float32), "blend", 1.0, helper.infer)
    assert np.array_equal(out, frames)
    assert len(main.calls) == 5 and len(helper.calls) == 4  # the helper: its split only
    assert np.allclose(helper.calls[0][1], 5.0 * phase_split.LEVEL["net"])
    assert phase_split.helper_for("base") == phase_split.helper_for("fast") == "nano"
    assert phase_split.helper_for("nano") is None
    with pytest.raises(ValueError):
        phase_split.run(Recorder().infer, np.zeros((1, 4, 4, 3), np.uint8), np.zeros(1), "twice")


def test_heavier_coarse_noise_is_told_more_and_the_frame_itself_weighs_less() -> None:
    knee = phase_split.KNEE
    for r in (0.0, 1.0, knee):  # light noise: LEVEL["net"] times the reading, as before
        assert phase_split.split_level(r) == pytest.approx(phase_split.LEVEL["net"] * r)
    assert phase_split.split_level(2 * knee) == pytest.approx(phase_split.LEVEL["net"] * 2 * knee * 2)
    # a higher PCA reading raises it, by RAISE times at most; a lower one changes nothing
    base = phase_split.split_level(6.0)
    assert phase_split.split_level(6.0, pca=base * 1.1) == pytest.approx(base * 1.1)
    assert phase_split.split_level(6.0, pca=base * 5) == pytest.approx(base * phase_split.RAISE)
    # heavier: by RAISE_HEAVY times (PCA over-reads the heaviest noise), and the ceiling never
    # falls as the reading rises
    heavy = phase_split.split_level(20.0)
    assert heavy > phase_split.RAISE_AT * phase_split.RAISE / phase_split.RAISE_HEAVY
    assert phase_split.split_level(20.0, pca=1e4) == pytest.approx(heavy * phase_split.RAISE_HEAVY)
    ceilings = [phase_split.split_level(r, pca=1e4) for r in np.linspace(0.5, 30, 60)]
    assert np.all(np.diff(ceilings) >= 0)
    assert phase_split.split_level(6.0, pca=base / 2) == pytest.approx(base)
    levels = [phase_split.split_level(r) for r in np.linspace(0, 30, 61)]
    assert np.all(np.diff(levels) > 0)
    lo, hi = phase_split.FADE
    assert phase_split.full_weight(lo) == pytest.approx(1 / 3) and phase_split.full_weight(0.0) == pytest.approx(1 / 3)
    assert phase_split.full_weight((lo + hi) / 2) == pytest.approx(1 / 6)
    assert phase_split.full_weight(hi) == 0.0 and phase_split.full_weight(2, views=2) == pytest.approx(0.5)
    # the weighted blend: the plain mean at equal shares, else the weighted mean, rounded
    a, b, c = (np.full(4, v, np.uint8) for v in (30, 60, 91))
    assert np.array_equal(phase_split.blend([a, b, c], [1 / 3] * 3), phase_split.mean([a, b, c]))
    assert phase_split.blend([a, b, c], [0.25, 0.375, 0.375]).tolist() == [round(0.25 * 30 + 0.75 * 75.5)] * 4
    assert phase_split.blend([b, c], [0.5, 0.5]).tolist() == [76] * 4  # 75.5 rounds half up


def test_a_heavy_split_level_tells_both_splits_and_leaves_the_frame_out() -> None:
    frames = np.full((1, 6, 8, 3), 90, np.uint8)
    main, helper = Recorder(), Recorder()
    out = phase_split.run(main.infer, frames, np.array([9.0], np.float32), "blend", 1.4, helper.infer,
                          split_sigma=phase_split.FADE[1] + 1)
    assert np.array_equal(out, frames)
    # no full-frame run (it has no share): the 2 x 2 split and the 4 x 4 split, which took
    # its share, each told the split level; the helper's 2 x 2 split
    assert len(main.calls) == 4 + 16 and len(helper.calls) == 4
    assert [shape[1:3] for shape, _ in main.calls] == [(3, 4)] * 4 + [(2, 2)] * 16
    assert all(np.allclose(lv, phase_split.FADE[1] + 1) for _, lv in main.calls + helper.calls)
    main = Recorder()
    phase_split.run(main.infer, frames, np.array([3.0], np.float32), "blend", 1.4, split_sigma=5.0)
    assert len(main.calls) == 5 and np.allclose(main.calls[-1][1], 5.0) and np.allclose(main.calls[0][1], 3.0)
    main = Recorder()  # never below factor x the frame's own level
    phase_split.run(main.infer, frames, np.array([5.0], np.float32), "blend", 1.4, split_sigma=5.0)
    assert np.allclose(main.calls[-1][1], 7.0)


def test_the_deeper_split_takes_the_share_the_frame_gives_up() -> None:
    """Between FADE[0] and FADE[1] all four views run: at the middle the frame's own output
    and the 4 x 4 split have a sixth each, the two 2 x 2 splits a third each."""
    frames = np.zeros((1, 6, 8, 3), np.uint8)
    value = {(6, 8): 100, (3, 4): 50, (2, 2): 20}  # what each view returns, by the size it sees

    def main(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return np.full(x.shape, value[x.shape[1:3]], np.uint8)

    def helper(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return np.full(x.shape, 80, np.uint8)

    lo, hi = phase_split.FADE
    out = phase_split.run(main, frames, np.array([1.0], np.float32), "blend", 1.0, helper, (lo + hi) / 2)
    assert np.all(out == round(100 / 6 + 20 / 6 + 50 / 3 + 80 / 3))  # 63
    out = phase_split.run(main, frames, np.array([1.0], np.float32), "blend", 1.0, helper, lo)
    assert np.all(out == round((100 + 50 + 80) / 3))  # light: no deeper split
    out = phase_split.run(main, frames, np.array([1.0], np.float32), "blend", 1.0, None, hi)
    assert np.all(out == 35)  # heavy, no helper: the 2 x 2 and 4 x 4 splits, half each


def test_coarseness_tells_processed_camera_grain_from_white_noise_and_a_clean_photo() -> None:
    clean = _photo().astype(np.float32)
    rng = np.random.default_rng(1)
    white = np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).round().astype(np.uint8)
    coarse = _camera_like(clean)
    assert coarseness(white) < 2.0
    assert coarseness(clean.astype(np.uint8)) < phase_split.COARSE
    assert coarseness(coarse) > phase_split.COARSE
    assert coarseness(np.zeros((5, 5, 3), np.uint8)) == 1.0  # too small to read: not coarse


def _run(processor: Processor, image: np.ndarray) -> np.ndarray:
    return processor(Frame(image=image, index=0, pts=None, sequence=0)).image


def test_processor_auto_splits_coarse_noise_only_and_off_never() -> None:
    clean = _photo().astype(np.float32)
    rng = np.random.default_rng(2)
    white = np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).round().astype(np.uint8)
    coarse = _camera_like(clean)
    rec = Recorder()
    auto = Processor(rec, sigma=5.0, coarse="auto")
    _run(auto, white)
    assert auto.coarse_frames == 0 and len(rec.calls) == 1
    auto = Processor(rec, sigma=5.0, coarse="auto")  # a new input: read afresh
    done = auto(Frame(image=coarse, index=0, pts=None, sequence=0))
    assert done.coarse == "blend"  # what the HUD shows
    assert auto.coarse_frames == 1 and len(rec.calls) == 1 + 5  # the frame and its 4 phases
    assert np.allclose(rec.calls[-5][1], 5.0)  # the frame as it is
    assert rec.calls[-5][0] == (1, *coarse.shape)
    for shape, level in rec.calls[-4:]:  # its four phases
        assert shape == (1, coarse.shape[0] // 2, coarse.shape[1] // 2, 3)
        assert np.allclose(level, 5.0 * phase_split.level_factor("net"))
    off = Processor(rec, sigma=5.0, coarse="off")
    _run(off, coarse)
    assert off.coarse_frames == 0 and len(rec.calls) == 7
    blend = Processor(rec, sigma=5.0, coarse="blend")  # asked for: also on white noise
    _run(blend, white)
    assert blend.coarse_frames == 1 and len(rec.calls) == 12


def test_processor_tells_the_split_the_level_that_follows_the_learned_reading() -> None:
    """With an estimated level the sub-images are told ``split_level`` of the learned
    reading, times the strength; with a told level, ``level_factor`` times it."""
    coarse = _camera_like(_photo().astype(np.float32))
    rec = Recorder()
    auto = Processor(rec, coarse="auto", strength=1.5)
    _run(auto, coarse)
    assert auto.coarse_frames == 1
    reading = auto.last_estimate
    assert reading is not None and reading > 0
    from models.estimate import estimate

    want = phase_split.split_level(reading, estimate(coarse, "pca")) * 1.5
    assert all(np.allclose(level, want, rtol=1e-5) for _, level in rec.calls[-4:])
    assert auto.split_sigma(coarse, np.array([1.0], np.float32)) == pytest.approx(want)
    assert auto.split_sigma(coarse, np.ones((1, 4, 4), np.float32)) is None  # a level map: as told

    class Pca(Recorder):
        model = "base"  # reads its own level by PCA: the split still follows the learned reading

    rec = Pca()
    auto = Processor(rec, coarse="auto")
    _run(auto, coarse)
    own = float(rec.calls[0][1][0])  # the frame itself: its own (PCA) level
    want = phase_split.split_level(estimate(coarse, "net"), estimate(coarse, "pca"))
    assert want >= phase_split.split_level(estimate(coarse, "net"))  # raised towards PCA, or not
    assert all(np.allclose(level, max(want, own * phase_split.level_factor("pca")), rtol=1e-5)
               for _, level in rec.calls[-4:])


def test_the_gate_and_the_splits_pca_level_share_one_reading_per_estimate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """16 coarse frames (each with its own grain) through ``--coarse-noise auto``: the
    coarseness gate is read on frames 0, 1 and 2 (a shot's first frames, their median) and 15,
    the PCA level the split may follow on frames 0 and 15, from one two-scale PCA pass each
    frame, not one pass each."""
    from models import estimate

    passes = []
    real = estimate._two_scales
    monkeypatch.setattr(estimate, "_two_scales", lambda *a, **k: passes.append(1) or real(*a, **k))
    clean = _photo().astype(np.float32)
    auto = Processor(Recorder(), coarse="auto")
    for i in range(16):
        frame = _camera_like(clean, seed=i)
        auto(Frame(image=frame, index=i, pts=None, sequence=0))
    assert auto.coarse_frames == 16 and len(passes) == 4


def test_a_frame_too_small_to_read_by_pca_is_split_at_the_learned_readings_level() -> None:
    """``--coarse-noise blend`` on a 6 x 6 frame: PCA cannot read it (it needs 8 px a side),
    so the split is told the learned reading's level alone, and nothing raises."""
    tiny = (100 + np.random.default_rng(4).normal(0, 3, (6, 6, 3))).round().astype(np.uint8)
    rec = Recorder()
    blend = Processor(rec, coarse="blend")
    assert _run(blend, tiny).shape == tiny.shape and blend.coarse_frames == 1
    want = phase_split.split_level(blend.last_estimate)
    assert want < 75  # not the cap
    assert all(np.allclose(level, want, rtol=1e-5) for _, level in rec.calls[-4:])


def test_processor_opens_the_helper_at_the_first_blended_frame_and_closes_it() -> None:
    clean = _photo().astype(np.float32)
    rng = np.random.default_rng(3)
    white = np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).round().astype(np.uint8)
    opened: list[Recorder] = []

    class Helper(Recorder):
        closed = False

        def close(self) -> None:
            self.closed = True

    def factory() -> Helper:
        opened.append(Helper())
        return opened[-1]

    proc = Processor(Recorder(), sigma=5.0, coarse="auto", coarse_helper=factory)
    _run(proc, white)
    assert opened == []  # white noise: never blended, never opened
    proc = Processor(Recorder(), sigma=5.0, coarse="auto", coarse_helper=factory)
    for i in range(3):
        proc(Frame(image=_camera_like(clean, seed=1 + i), index=i, pts=None, sequence=0))
    assert len(opened) == 1 and len(opened[0].calls) == 3 * 4  # its split of each frame
    proc.close()
    assert opened[0].closed


def test_a_shot_once_blended_stays_blended_while_its_reading_hovers_at_the_gate() -> None:
    rng = np.random.default_rng(6)
    gate, hold = phase_split.COARSE, phase_split.HOLD
    readings = iter([gate + 0.3, gate - 0.5, gate - hold + 0.2, gate - hold - 0.1, gate - 0.5,
                     gate - 0.5])
    proc = Processor(Recorder(), sigma=5.0, coarse="auto")

    class Scripted:
        def __call__(self, image: np.ndarray) -> float:
            return next(readings)

        def reset(self) -> None:
            pass

    proc.coarse_reading = Scripted()  # type: ignore[assignment]
    modes = []
    scene = rng.integers(40, 200, (16, 24, 3))
    for i, sequence in enumerate([0, 0, 0, 0, 0, 1]):  # one scene, no two frames alike
        image = (scene + rng.integers(-3, 4, scene.shape)).astype(np.uint8)
        modes.append(proc(Frame(image=image, index=i, pts=None, sequence=sequence)).coarse)
    # on at the gate, held above gate - hold, off under it and not back on below the gate;
    # a new sequence starts off
    assert modes == ["blend", "blend", "blend", "off", "off", "off"]
    assert phase_split.auto_mode(gate - 0.5) == "off" and phase_split.auto_mode(gate - 0.5, True) == "blend"


def test_a_tier_switch_carries_the_gate_over() -> None:
    """``LiveProcessor.swap`` hands the new tier's processor the old one's gate
    (``Processor.carry_coarse``): the same stream's noise, read hovering at the gate, stays
    blended; a processor that carries nothing starts under it."""
    from stream.processor import AutoSigma

    gate = phase_split.COARSE
    scene = np.random.default_rng(7).integers(40, 200, (16, 24, 3)).astype(np.uint8)

    def reading(value: float) -> AutoSigma:
        return AutoSigma(lambda image: value, every=15)

    old = Processor(Recorder(), sigma=5.0, coarse="auto")
    old.coarse_reading = reading(gate + 0.5)
    assert old(Frame(image=scene, index=0, pts=None, sequence=3)).coarse == "blend"
    new, fresh = (Processor(Recorder(), sigma=5.0, coarse="auto") for _ in range(2))
    new.carry_coarse(old)
    for proc in (new, fresh):
        proc.coarse_reading = reading(gate - 0.5)
    frame = Frame(image=scene, index=1, pts=None, sequence=3)
    assert new(frame).coarse == "blend" and new.coarse_reading.value == pytest.approx(gate + 0.5)
    assert fresh(frame).coarse == "off"
    other = Processor(Recorder(), sigma=5.0, coarse="auto")  # another sequence: nothing carried
    other.carry_coarse(old)
    other.coarse_reading = reading(gate - 0.5)
    assert other(Frame(image=scene, index=1, pts=None, sequence=4)).coarse == "off"


def test_a_shot_s_coarseness_is_the_median_of_its_first_frames() -> None:
    """One frame's reading over the gate does not hold the split for the whole shot: the
    first three frames are each read and the median decides (QCIF ``carphone`` in light camera
    noise read 5.4 on its first frame and 2.7 to 5.5 after, and was split throughout, 2.2 dB
    below not splitting); a new shot, or a single picture, is read once again."""
    from stream.processor import COARSE_FIRST, AutoSigma

    gate = phase_split.COARSE
    readings = iter([gate + 0.4, gate - 1.6, gate - 1.5, gate - 1.4, gate + 2.0])
    read: list[int] = []
    proc = Processor(Recorder(), sigma=5.0, coarse="auto")
    proc.coarse_reading = AutoSigma(lambda image: read.append(1) or next(readings), every=15,
                                    first=COARSE_FIRST)
    rng = np.random.default_rng(8)
    scene = rng.integers(40, 200, (16, 24, 3))

    def frame(i: int, sequence: int = 0) -> Frame:  # one scene, no two frames alike
        image = (scene + rng.integers(-3, 4, scene.shape)).astype(np.uint8)
        return Frame(image=image, index=i, pts=None, sequence=sequence)

    modes = [proc(frame(i)).coarse for i in range(20)]
    # frame 0 alone over the gate; frame 1 the mean of two (gate - 0.6: held); then the median
    assert modes == ["blend", "blend"] + ["off"] * 18
    assert len(read) == 4  # frames 0, 1, 2 and 15
    assert proc(frame(20, sequence=1)).coarse == "blend"
    auto = AutoSigma(lambda image: 7.0, first=3)
    assert auto.state() == (None, 0, ())
    auto(frame(0).image)
    other = AutoSigma(lambda image: 1.0, first=3)
    other.restore(auto.state())  # a tier switch carries the first readings over
    assert other(frame(1).image) == pytest.approx(4.0) and other.state()[2] == (7.0, 1.0)


def test_processor_refuses_an_unknown_mode() -> None:
    from models.errors import UserError

    with pytest.raises(UserError, match="--coarse-noise"):
        Processor(Recorder(), sigma=5.0, coarse="split")


@pytest.mark.data
def test_real_pairs_through_the_product_gain_from_the_split(data_dir: Path, tmp_path: Path) -> None:
    """The first 6 PolyU test-half pairs (real DSLR noise) as one folder through
    ``python -m stream``: the default (``--coarse-noise auto``) beats ``off`` on average."""
    from models.data import pair_paths, read_rgb
    from stream.cli import main

    folder = data_dir / "realnoise" / "polyu"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    pairs = pair_paths(folder, "test")[:6]
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    for n, _ in pairs:
        cv2.imwrite(str(noisy / f"{n.stem}.png"), read_rgb(n)[..., ::-1])
    scores = {}
    for mode in ("auto", "off"):
        out = tmp_path / mode
        assert main([str(noisy), str(out), "--model", "fast", "--backend", "torch", "--device", "cpu",
                     "--temporal", "off", "--coarse-noise", mode, "--quiet"]) == 0
        scores[mode] = np.mean([psnr(read_rgb(out / f"{n.stem}.png"), read_rgb(c), 255.0) for n, c in pairs])
    assert scores["auto"] > scores["off"] + 0.15, scores


@pytest.mark.data
def test_heavy_real_noise_through_the_product_is_told_its_level(data_dir: Path, tmp_path: Path) -> None:
    """Seven PolyU test-half pairs (every ninth) with their real noise scaled 6 times (about
    23 levels of coarse noise, as a phone's in low light) as one folder through ``python -m
    stream``: 25.45 dB with the 4 x 4 split taking the frame's share (``run_deep``), 25.03
    without it (``split_level`` and ``full_weight`` alone); 23.51 when the split was told 1.4
    times the learned reading and the frame kept a third of the blend."""
    from models.data import pair_paths, read_rgb
    from stream.cli import main

    folder = data_dir / "realnoise" / "polyu"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    pairs = pair_paths(folder, "test")[::9]
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    for n, c in pairs:
        a, b = read_rgb(n).astype(np.float32), read_rgb(c).astype(np.float32)
        x = np.clip(np.round(b + 6 * (a - b)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(noisy / f"{n.stem}.png"), x[..., ::-1])
    out = tmp_path / "out"
    assert main([str(noisy), str(out), "--model", "fast", "--backend", "torch", "--device", "cpu",
                 "--temporal", "off", "--quiet"]) == 0
    score = np.mean([psnr(read_rgb(out / f"{n.stem}.png"), read_rgb(c), 255.0) for n, c in pairs])
    assert score > 25.25, score


def test_the_helper_opens_beside_the_run_and_on_torch_beside_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream import session
    from stream.options import DenoiseOptions

    asked: list[DenoiseOptions] = []
    monkeypatch.setattr(session, "open_engine", lambda d: asked.append(d) or Recorder())
    run = DenoiseOptions(model="fast", backend="auto", device="cuda", precision="fp16")

    class Engine:
        name = "tensorrt"

    session.coarse_helper(run, Engine())()
    session.coarse_helper(run, Recorder())()
    assert [(a.model, a.backend, a.device, a.precision) for a in asked] == [
        ("nano", "torch", "cuda", "fp16"), ("nano", "auto", "cuda", "fp16")]
    assert session.coarse_helper(DenoiseOptions(model="nano")) is None
    assert session.coarse_helper(DenoiseOptions(model="base-temporal")) is None
    assert session.coarse_helper(DenoiseOptions(model="fast", coarse="off")) is None


def test_a_repeated_frame_gets_the_same_output_and_moves_no_state() -> None:
    """A source repeating frames (15 fps delivered at 30): the processor gives the previous
    output again without running the engine; a new strength, or a new frame, runs it."""
    rec = Recorder()
    proc = Processor(rec, sigma=5.0, coarse="off")
    img = _photo()
    first = proc(Frame(image=img, index=0, pts=None, sequence=0))
    again = proc(Frame(image=img.copy(), index=1, pts=None, sequence=0))
    assert len(rec.calls) == 1 and proc.repeats == 1 and proc.count == 2
    assert np.array_equal(again.image, first.image) and again.index == 1 and again.sigma == 5.0
    proc.strength = 2.0
    proc(Frame(image=img.copy(), index=2, pts=None, sequence=0))
    assert len(rec.calls) == 2  # asked for more: run again
    other = img.copy()
    other[0, 0, 0] ^= 1
    proc(Frame(image=other, index=3, pts=None, sequence=0))
    assert len(rec.calls) == 3



def test_averaged_frames_tell_the_split_the_level_left() -> None:
    """A file job's window averages a frame with fresh frames of the same scene
    (``stream.lookahead``) and the split runs (asked for here): the sub-images are told the
    split's level read from the frame as it came, times the share of the noise the mean
    leaves per pixel, not ``factor`` times the frame's reading times that share (before the
    fix: 26 dB against 30 without averaging on a frozen-noise clip of a Canon80D crop x4)."""
    from stream.lookahead import Window
    from stream.temporal import create_stage

    clean = _photo().astype(np.float32)
    rng = np.random.default_rng(5)
    frames = [np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).round().astype(np.uint8)
              for _ in range(3)]
    rec = Recorder()
    proc = Processor(rec, coarse="blend", temporal=lambda: create_stage("auto", "cpu", window=True))
    proc(Frame(image=frames[0], index=0, sequence=0), Window([frames[1]], [frames[2]], 4))
    assert proc.coarse_frames == 1
    want = proc.split_sigma(frames[0], np.array([1.0], np.float32))
    splits = [level for shape, level in rec.calls if shape[1] < frames[0].shape[0]]
    assert splits and all(level.ndim == 3 for level in splits)  # per pixel of the sub-image
    told = np.mean([float(level.mean()) for level in splits])
    # three frames' worth at most where all match: 1 / sqrt(3) of the level
    assert 0.55 * want < told < 1.0 * want

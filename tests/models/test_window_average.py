"""``models.window_average``: a file job's frame averaged with the frames around it."""
from __future__ import annotations

import cv2
import numpy as np
from conftest import camera_noise

from models.window_average import StillShare, WindowAverage

SIGMA = 20.0


def texture(h: int = 240, w: int = 320, seed: int = 7) -> np.ndarray:
    """A smooth scene with fine texture, float32 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + 100 * xx / w, 50 + 120 * yy / h,
                    90 + 40 * np.sin(xx / 9) * np.cos(yy / 7)], -1)
    img += cv2.GaussianBlur(rng.normal(0, 40, img.shape).astype(np.float32), (0, 0), 1.5)
    return img


def pan(n: int, speed: float, size: tuple[int, int] = (112, 160)) -> list[np.ndarray]:
    """Clean frames of a camera panning ``speed`` px a frame over ``texture``."""
    big = texture()
    h, w = size
    return [np.clip(np.rint(cv2.warpAffine(big, np.float32([[1, 0, -speed * t - 8],
                                                            [0, 1, -0.4 * speed * t - 8]]),
                                           (w, h), flags=cv2.INTER_CUBIC)), 0, 255).astype(np.uint8)
            for t in range(n)]


def noisy(frames: list[np.ndarray], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(f + rng.normal(0, SIGMA, f.shape)), 0, 255).astype(np.uint8)
            for f in frames]


def rms(a: np.ndarray, b: np.ndarray, where: np.ndarray | slice = slice(None)) -> float:
    d = a.astype(np.float32) - b.astype(np.float32)
    return float(np.sqrt((d[where] ** 2).mean()))


def around(frames: list[np.ndarray], t: int, r: int) -> tuple[list, list]:
    return frames[max(0, t - r):t][::-1], frames[t + 1:t + 1 + r]


def test_a_still_scene_is_averaged_over_the_whole_window():
    """Nine frames of a still scene: the mean holds a third of the noise, and the level it
    reports per pixel says so."""
    clean = pan(9, 0.0)
    frames = noisy(clean)
    avg = WindowAverage()
    image, scale = avg(frames[4], *around(frames, 4, 4), SIGMA)
    assert avg.last_used == 8 and scale is not None and image.dtype == np.uint8
    inner = (slice(4, -4), slice(4, -4))
    err = rms(image, clean[4], inner)
    # measured: 6.7 against the noisy frame's 20.0; told 0.34 of the level (6.8)
    assert err < 0.45 * SIGMA
    assert 0.85 * err < float(scale[inner].mean()) * SIGMA < 1.2 * err


def test_a_pan_is_followed():
    """A camera panning 3 px a frame: every neighbour is warped onto the frame and taken,
    and the mean is far closer to the clean frame than the noisy one."""
    clean = pan(9, 3.0)
    frames = noisy(clean)
    avg = WindowAverage()
    image, _ = avg(frames[4], *around(frames, 4, 4), SIGMA)
    inner = (slice(16, -16), slice(16, -16))
    assert avg.last_used == 8
    # measured: 6.4 against 19.9 (5.3 with bilinear warps, which also smooth the noise)
    assert rms(image, clean[4], inner) < 0.4 * rms(frames[4], clean[4], inner)


SQUARE = np.float32([235, 220, 40])


def square_over(scene: list[np.ndarray], x0: int, step: int) -> tuple[list, list]:
    """A yellow square crossing the frames of ``scene`` ``step`` px a frame, and its masks."""
    clean, masks = [], []
    for t, img in enumerate(scene):
        img, m = img.copy(), np.zeros(img.shape[:2], bool)
        m[40:60, x0 + step * t:x0 + 20 + step * t] = True
        img[m] = SQUARE
        clean.append(img)
        masks.append(m)
    return clean, masks


def test_a_moving_square_leaves_no_trail():
    """A square moving 6 px a frame over a still scene: inside it the neighbours are taken
    along its motion (the flow follows it), never washed out by the scene; where it was and
    will be, the scene is averaged, with no trace of the square."""
    bg = pan(1, 0.0)[0]
    clean, masks = square_over([bg] * 9, 10, 6)
    frames = noisy(clean, seed=3)
    image, scale = WindowAverage()(frames[4], *around(frames, 4, 4), SIGMA)
    assert scale is not None
    inner = np.zeros_like(masks[4])
    inner[44:56, 38:50] = True  # inside the square, off its edges
    assert np.abs(image[inner].astype(np.float32).mean(0) - SQUARE).max() < 4.0
    assert rms(image, clean[4], inner) < rms(frames[4], clean[4], inner)
    gone = (masks[3] | masks[5]) & ~masks[4]  # where the square was and will be
    # measured: mean error 0.6, rms 12.5 against the noisy frame's 19.2 there
    assert abs(float((image.astype(np.float32) - bg)[gone].mean())) < 4.0
    assert rms(image, bg, gone) < 0.7 * SIGMA


def test_a_cut_ends_the_window_on_its_side():
    """Frames after a scene cut are left out (and those beyond them), the frames before
    are taken."""
    a, b = pan(5, 0.0), pan(4, 0.0, size=(112, 160))
    b = [np.ascontiguousarray(255 - f[::-1]) for f in b]  # another scene
    frames = noisy(a + b)
    avg = WindowAverage()
    avg(frames[4], *around(frames, 4, 4), SIGMA)
    assert avg.last_used == 4
    avg(frames[5], [], frames[6:9], SIGMA)  # the new shot's first frame
    assert avg.last_used == 3


def test_repeated_frames_bring_no_new_noise():
    """A source repeating every frame (15 fps delivered at 30): a neighbour identical to the
    one before it is skipped, so the level told is what the unique frames leave."""
    clean = pan(5, 0.0)
    unique = noisy(clean)
    doubled = [f for f in unique for _ in range(2)]  # 0 0 1 1 2 2 3 3 4 4
    avg = WindowAverage()
    _, once = avg(unique[2], [unique[1], unique[0]], [unique[3], unique[4]], SIGMA)
    used_once = avg.last_used
    # frame 4 of the doubled clip is unique[2]; around it 1 1 0 0 | 2 3 3 4 (the 2 is itself)
    _, twice = avg(doubled[4], doubled[:4][::-1], doubled[5:9], SIGMA)
    assert used_once == avg.last_used == 4
    np.testing.assert_allclose(once, twice)


def test_nothing_around_gives_the_frame_back():
    frames = noisy(pan(1, 0.0))
    image, scale = WindowAverage()(frames[0], [], [], SIGMA)
    assert image is frames[0] and scale is None


def test_a_square_over_a_slow_pan_leaves_no_trail():
    """The camera pans 0.5 px a frame while a square crosses at 5 px a frame: where the
    square was one frame before and will be one frame after, the mean shows the (moved)
    scene, and inside it the square keeps its colour."""
    scene = pan(9, 0.5)
    clean, masks = square_over(scene, 20, 5)
    frames = noisy(clean, seed=4)
    image, _ = WindowAverage()(frames[4], *around(frames, 4, 4), SIGMA)
    gone = (masks[3] | masks[5]) & ~masks[4]
    # measured: mean error 0.3, rms 13.9 against the noisy frame's 21.0 there
    assert abs(float((image.astype(np.float32) - scene[4])[gone].mean())) < 4.0
    assert rms(image, scene[4], gone) < 0.7 * SIGMA
    inner = np.zeros_like(masks[4])
    inner[44:56, 44:56] = True
    assert np.abs(image[inner].astype(np.float32).mean(0) - SQUARE).max() < 4.0


def test_a_copy_of_the_frames_noise_is_not_averaged():
    """A neighbour that carries the frame's own noise (the same noisy picture shifted a pixel,
    as a source repeating a frame with an offset, or a compressed video's skipped blocks,
    copies) brings nothing new: it is not averaged in, and the level told stays the frame's;
    fresh neighbours beside it on the other side still are."""
    clean = pan(6, 0.0)
    frames = noisy(clean, seed=8)
    copy = np.ascontiguousarray(np.roll(frames[2], (1, 1), axis=(0, 1)))
    avg = WindowAverage()
    image, scale = avg(frames[2], [copy], [], SIGMA)
    assert avg.last_used == 0 and scale is None and image is frames[2]
    _, scale = avg(frames[2], [copy], frames[3:5], SIGMA)
    assert avg.last_used == 2 and scale is not None
    inner = (slice(8, -8), slice(8, -8))
    assert float(scale[inner].mean()) > 0.55  # three frames' worth at most: 1 / sqrt(3)


def test_coarse_camera_noise_on_a_still_scene_is_averaged():
    """Camera-like noise keeps far more of its level in the cells than white noise does, and
    more in their grey: tested against the white level every neighbour read as moved and
    nothing was averaged.  The cells' own reading lets all eight in (the level told is below
    the noise's, as a noise estimator reads such a frame)."""
    clean = pan(9, 0.0)
    frames = camera_noise(clean)
    avg = WindowAverage()
    image, scale = avg(frames[4], *around(frames, 4, 4), 10.0)
    assert avg.last_used == 8 and scale is not None
    inner = (slice(4, -4), slice(4, -4))
    # measured: 5.1 against the noisy frame's 11.9
    assert rms(image, clean[4], inner) < 0.55 * rms(frames[4], clean[4], inner)


def test_a_moving_square_in_camera_noise_leaves_no_trail():
    """The square of ``test_a_moving_square_leaves_no_trail`` in coarse camera-like noise: the
    cells' own reading of the noise does not let it trail."""
    bg = pan(1, 0.0)[0]
    clean, masks = square_over([bg] * 9, 10, 6)
    frames = camera_noise(clean, seed=6)
    image, _ = WindowAverage()(frames[4], *around(frames, 4, 4), 10.0)
    gone = (masks[3] | masks[5]) & ~masks[4]
    # measured: mean error -0.2, rms 9.9 against the noisy frame's 11.9 there
    assert abs(float((image.astype(np.float32) - bg)[gone].mean())) < 4.0
    assert rms(image, bg, gone) < rms(frames[4], bg, gone)
    inner = np.zeros_like(masks[4])
    inner[44:56, 38:50] = True
    # measured: 4.2 off at most; coarse noise does not average out over 12 x 12 pixels (the
    # noisy frame's own mean there is 4.4 off); washed out by the scene it would be tens off
    assert np.abs(image[inner].astype(np.float32).mean(0) - SQUARE).max() < 8.0


def test_the_smoothings_share_fades_in_and_out_over_three_frames():
    """A reading of the camera that flips does not switch the whole picture at once: the
    smoothing's output comes in over three frames and goes out the same way."""
    smoothed, frame = np.full((4, 6, 3), 210, np.uint8), np.full((4, 6, 3), 90, np.uint8)
    share = StillShare()
    got = [int(share(smoothed, frame, still)[0, 0, 0])
           for still in (True, True, True, True, False, True, False, False, False)]
    assert got == [130, 170, 210, 210, 170, 210, 170, 130, 90]
    share.reset()
    assert share(smoothed, frame, False) is frame
    assert share(smoothed, frame, True)[0, 0, 0] == 130

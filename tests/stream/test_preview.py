"""Preview drawing (pure functions) and key/mouse handling, no display needed."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from stream.frame import Frame
from stream.live import LiveControls
from stream.preview import display_missing, handle_key, handle_mouse
from stream.views import (
    KEYS_HELP,
    Hud,
    PreviewState,
    display_scale,
    hud_lines,
    noise_level_map,
    noise_map_view,
    render,
    residual_view,
    split_view,
)

RED, BLUE = (200, 30, 30), (30, 30, 200)


def _pair(h=90, w=160):
    before = np.empty((h, w, 3), np.uint8)
    before[:] = RED
    after = np.empty((h, w, 3), np.uint8)
    after[:] = BLUE
    return before, after


def test_split_view_halves_and_divider():
    before, after = _pair()
    out = split_view(before, after, 60)
    assert out[10, :59].tolist() == [list(RED)] * 59
    assert out[10, 61:].tolist() == [list(BLUE)] * 99
    assert out[10, 59:61].tolist() == [[255, 255, 255]] * 2
    assert out.shape == after.shape and before[0, 0].tolist() == list(RED)  # inputs untouched


def test_residual_view_amplifies_difference_around_grey():
    before = np.full((4, 4, 3), 100, np.uint8)
    after = np.full((4, 4, 3), 95, np.uint8)
    assert residual_view(before, after, gain=4).max() == 148  # 128 + 4 * 5
    assert residual_view(after, before, gain=4).min() == 108
    assert residual_view(before, before).tolist() == np.full((4, 4, 3), 128).tolist()
    assert residual_view(np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8))[0, 0, 0] == 255


def test_noise_level_map_measures_gaussian_noise():
    rng = np.random.default_rng(0)
    flat = np.full((128, 128, 3), 128.0)
    noisy = np.clip(flat + rng.normal(0, 10, flat.shape), 0, 255).astype(np.uint8)
    cells = noise_level_map(noisy, block=16)
    assert cells.shape == (8, 8)
    assert float(np.median(cells)) == pytest.approx(10.0, abs=1.0)  # per channel, as sigma
    assert float(noise_level_map(flat.astype(np.uint8)).max()) == 0.0
    view = noise_map_view(noisy)
    assert view.shape == noisy.shape and view.dtype == np.uint8


def test_display_scale_enlarges_small_and_shrinks_big_frames():
    assert display_scale(160, 90) == 4.0
    assert display_scale(640, 360) == 1.0
    assert display_scale(3840, 2160) == pytest.approx(1 / 3)


def test_hud_lines_show_numbers():
    hud = Hud(fps=24.96, latency_ms=41.4, dropped=3, model="fast", backend="torch-cpu",
              sigma=12.34, strength=0.8, temporal=True, paused=True)
    text = "\n".join(hud_lines(hud, "split"))
    for part in ("25.0 fps", "latency 41 ms", "dropped 3", "fast on torch-cpu", "sigma 12.3",
                 "strength 0.8", "temporal on", "noisy | denoised", "PAUSED"):
        assert part in text
    assert "latency -" in hud_lines(Hud(latency_ms=math.nan), "denoised")[0]
    assert "coarse" not in text  # the phase split did not run
    assert "sigma 4.0   coarse noise: blend" in "\n".join(hud_lines(Hud(sigma=4.0, coarse="blend"), "denoised"))


def test_render_split_view_left_before_right_after():
    before, after = _pair(360, 640)
    frame = Frame(image=after, index=0, original=before, sigma=10.0)
    img = render(frame, PreviewState(view="split", divider=0.25), Hud())
    assert img.shape == (360, 640, 3)
    row = 200  # between the HUD (top) and the key bar (bottom)
    assert img[row, 100].tolist() == list(RED) and img[row, 600].tolist() == list(BLUE)
    assert img[row, 159].tolist() == [255, 255, 255]  # divider at 0.25 * 640
    # HUD drawn: the top-left corner is darkened text box, the key bar at the bottom too.
    assert img[2, 2].tolist() != list(RED) and img[-2, 300].tolist() != list(BLUE)


def test_render_views_and_small_frames_scaled_up():
    before, after = _pair(90, 160)
    frame = Frame(image=after, index=0, original=before)
    for view in ("denoised", "noise", "map"):
        img = render(frame, PreviewState(view=view), Hud())
        assert img.shape == (360, 640, 3)
    assert render(frame, PreviewState(view="denoised"), Hud())[200, 320].tolist() == list(BLUE)
    noise = render(frame, PreviewState(view="noise"), Hud())[200, 320]
    assert noise.tolist() == [255, 128, 0]  # 128 + 4 * (RED - BLUE), clipped


def test_keys_change_view_strength_temporal_pause_and_quit():
    state, controls = PreviewState(), LiveControls(strength=1.0)
    assert handle_key(ord("s"), state, controls) and state.view == "split"
    assert handle_key(ord("s"), state, controls) and state.view == "denoised"
    handle_key(ord("n"), state, controls)
    assert state.view == "noise"
    handle_key(ord("m"), state, controls)
    assert state.view == "map"
    handle_key(ord("-"), state, controls)
    handle_key(ord("-"), state, controls)
    assert controls.strength == pytest.approx(0.8)
    handle_key(ord("+"), state, controls)
    assert controls.strength == pytest.approx(0.9)
    handle_key(ord("t"), state, controls)
    assert controls.temporal
    handle_key(ord(" "), state, controls)
    assert controls.paused
    handle_key(ord(" "), state, controls)
    assert not controls.paused
    for _ in range(25):
        handle_key(ord("+"), state, controls)
    assert controls.strength == pytest.approx(3.0)  # capped
    controls.strength = 1.0
    handle_key(0x1000014, state, controls)  # right arrow (Qt)
    assert state.divider == pytest.approx(0.55)
    handle_key(ord(","), state, controls)
    assert state.divider == pytest.approx(0.5)
    assert not handle_key(-1, state, controls) and not handle_key(ord("x"), state, controls)
    assert not state.quit
    handle_key(27, state, controls)
    assert state.quit and controls.stop.is_set()


def test_mouse_drags_divider_only_in_split_view():
    state = PreviewState(view="denoised")
    assert not handle_mouse(cv2.EVENT_LBUTTONDOWN, 100, 640, state)
    state.view = "split"
    assert handle_mouse(cv2.EVENT_LBUTTONDOWN, 160, 640, state) and state.divider == 0.25
    assert handle_mouse(cv2.EVENT_MOUSEMOVE, 480, 640, state) and state.divider == 0.75
    assert handle_mouse(cv2.EVENT_LBUTTONUP, 700, 640, state) and state.divider == 1.0
    assert not handle_mouse(cv2.EVENT_MOUSEMOVE, 10, 640, state)  # not dragging any more
    assert state.divider == 1.0


def test_key_help_lists_every_key():
    for key in ("s split", "n removed noise", "m noise map", "+/- strength", "t temporal",
                "space pause", "q/Esc quit"):
        assert key in KEYS_HELP


def test_display_missing_on_linux_without_display():
    assert "DISPLAY is not set" in display_missing("linux", {})
    assert "no X server answers at DISPLAY=:187" in display_missing("linux", {"DISPLAY": ":187"})
    assert display_missing("win32", {}) == ""

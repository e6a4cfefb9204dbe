"""``python -m stream calibrate CLIP --realtime --preview`` under Xvfb, watched as a person would:
screenshots while it runs show the phase text and a partly filled progress bar while the still
frames are read and while the model is tuned; the finished screen shows the measured noise
curve (the profile's own noise.png, pixel for pixel), "fine-tuning step N of N" and a full bar;
q closes it. q while it tunes stops it: exit 130, no profile. Skips without Xvfb (Debian: xvfb), xwd (x11-apps), convert (imagemagick) or
xdotool.

The calibration runs in a child process (its own Qt), with the replay and forgetting check
of test_calibrate_cli.py (the calibration's own references; no ../shared) and 40 steps.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_calibrate_cli import noisy_frames, write

from stream import calibview

_TOOLS = ("Xvfb", "xwd", "convert", "xdotool")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in _TOOLS),
    reason="needs " + ", ".join(_TOOLS) + " (apt-get install xvfb x11-apps imagemagick xdotool)")

FRAMES, STEPS = 60, 40
ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
import numpy as np, torch
import models.calibrate_tune as tune
tune.replay_images = lambda m: ([torch.from_numpy(np.ascontiguousarray(s.reference)).permute(2, 0, 1)
                                 for s in m.samples], "refs")
tune.forgetting = lambda base, tuned: {}
from stream.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def display():
    number = next(n for n in range(120, 250) if not os.path.exists(f"/tmp/.X{n}-lock"))
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{number}") and proc.poll() is None:
        if time.monotonic() > end:
            break
        time.sleep(0.05)
    if proc.poll() is not None or not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        proc.kill()
        pytest.skip(f"Xvfb :{number} did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(5)


def screenshot(display: str, path: Path) -> np.ndarray:
    subprocess.run(f"xwd -display {display} -root -silent | convert xwd:- png:{path}",
                   shell=True, check=True, timeout=30)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def text_template(text: str) -> np.ndarray:
    """``text`` as the panel draws it (same font, scale, colour, background)."""
    (w, h), base = cv2.getTextSize(text, calibview.FONT, calibview.TEXT_SCALE,
                                   calibview.TEXT_THICKNESS)
    img = np.empty((h + base + 6, w + 6, 3), np.uint8)
    img[:] = calibview.BACKGROUND
    calibview.put_text(img, text, (3, h + 3))
    return img


def found(shot: np.ndarray, template: np.ndarray) -> bool:
    """Whether ``template`` appears in ``shot``: the squared differences summed over it under
    one per pixel (anti-aliased edges differ by a level or two now and then; another text
    or picture differs by millions)."""
    diff = cv2.matchTemplate(shot, template, cv2.TM_SQDIFF)
    return float(diff.min()) <= template.shape[0] * template.shape[1]


def bar_fill(shot: np.ndarray) -> int:
    """Pixels of the progress bar filled (the longest run of its colour on one row)."""
    rows = (shot == calibview.BAR_COLOUR).all(axis=2).sum(axis=1)
    return int(rows.max())


def test_calibration_shows_progress_and_noise_curve(display, tmp_path: Path) -> None:
    clip = tmp_path / "still"
    clip.mkdir()
    for i, f in enumerate(noisy_frames(FRAMES)[1]):  # 96x64, 2.4 s at 25 fps
        write(clip / f"{i:03d}.png", f)
    env = {**os.environ, "DISPLAY": display, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", CHILD, "calibrate", str(clip), "--name", "cam", "--realtime",
           "--steps", str(STEPS), "--preview", "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reading, tuning = text_template("reading still frames"), text_template("fine-tuning step")
    finished = text_template("calibrated cam")  # the title once the profile is saved
    done_text = text_template(f"fine-tuning step {STEPS} of {STEPS}")
    full = calibview.BAR_BOX[2] - calibview.BAR_BOX[0] - 3
    seen: dict[str, list[int]] = {"reading": [], "tuning": []}  # bar fill per screenshot
    shots = 0
    shot = None
    end = time.monotonic() + 240
    try:
        while time.monotonic() < end and proc.poll() is None:
            shot = screenshot(display, tmp_path / f"shot{shots}.png")  # kept for a look
            shots += 1
            fill = bar_fill(shot)
            if found(shot, reading):
                seen["reading"].append(fill)
            elif found(shot, finished):
                break
            elif found(shot, tuning):
                seen["tuning"].append(fill)
        assert proc.poll() is None, proc.communicate()
        assert shot is not None and found(shot, finished), "no finished screen"
        assert found(shot, done_text) and bar_fill(shot) == full
        # the noise curve on screen is the measured one, as saved in the profile's noise.png
        saved = tmp_path / "cache" / "denoise-stream" / "profiles" / "cam"
        curve = cv2.cvtColor(cv2.imread(str(saved / "noise.png")), cv2.COLOR_BGR2RGB)
        assert curve.shape == (calibview.PLOT_H, calibview.PANEL_W, 3)
        assert found(shot, curve)
        # and something of it is drawn: its red, green and blue curves
        for colour in ((220, 0, 0), (0, 160, 0), (0, 0, 220)):
            assert (shot == colour).all(axis=2).sum() > 50, colour
        # while it ran: the bar part filled in both phases (the clip plays 2.4 s; 40 steps)
        assert any(0 < f < full for f in seen["reading"]), seen
        assert any(0 <= f < full for f in seen["tuning"]), seen
        assert seen["reading"] == sorted(seen["reading"]), seen
        print(f"{shots} screenshots; bar fill (of {full}) while reading {seen['reading']}, "
              f"while tuning {seen['tuning']}")
        # q closes the finished screen at once (it would stay up to HOLD_SECONDS)
        t0 = time.monotonic()
        press_q(env, "calibrate cam")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < calibview.HOLD_SECONDS - 2
        assert (saved / "weights.safetensors").is_file()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def press_q(env: dict[str, str], title: str) -> None:
    """Point at the window named ``title`` (focus follows the pointer) and type q."""
    wid = subprocess.run(["xdotool", "search", "--sync", "--name", title], env=env,
                         capture_output=True, text=True, timeout=20, check=True).stdout.split()[0]
    subprocess.run(["xdotool", "mousemove", "--window", wid, "100", "100"], env=env, check=True,
                   timeout=20)
    subprocess.run(["xdotool", "key", "q"], env=env, check=True, timeout=20)


def test_q_stops_a_calibration_and_nothing_is_written(display, tmp_path: Path) -> None:
    clip = tmp_path / "still"
    clip.mkdir()
    for i, f in enumerate(noisy_frames(24)[1]):
        write(clip / f"{i:03d}.png", f)
    env = {**os.environ, "DISPLAY": display, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", CHILD, "calibrate", str(clip), "--name", "cam", "--realtime",
           "--steps", "100000", "-q"]  # a live source: the window by default
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tuning = text_template("fine-tuning step")
    try:
        end = time.monotonic() + 240
        while time.monotonic() < end and proc.poll() is None:
            shot = screenshot(display, tmp_path / "shot.png")
            if found(shot, tuning) and bar_fill(shot) > 0:
                break
        assert proc.poll() is None, proc.communicate()
        press_q(env, "calibrate cam")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err.strip() == "interrupted; no profile written", err
        profiles = tmp_path / "cache" / "denoise-stream" / "profiles"
        assert not profiles.exists() or not any(profiles.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

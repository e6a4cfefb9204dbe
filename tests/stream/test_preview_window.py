"""The real preview window under Xvfb: a screenshot shows the split view, keys and mouse
drags reach it, and a paused window sleeps. Skips when Xvfb (Debian: xvfb), xwd (x11-apps),
convert (imagemagick) or xdotool are missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest
from stream_helpers import openers_spying_on_windows

from stream.frame import Frame
from stream.live import LiveControls, LiveStats
from stream.preview import PreviewWindow
from stream.views import PreviewState

RED, BLUE = (200, 30, 30), (30, 30, 200)
TITLE = "denoise preview test"
_TOOLS = ("Xvfb", "xwd", "convert", "xdotool")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in _TOOLS),
    reason="needs " + ", ".join(_TOOLS) + " (apt-get install xvfb x11-apps imagemagick xdotool)")


@pytest.fixture(scope="module")
def display():
    """A private X server; Qt (OpenCV's GUI here) connects to it on first use."""
    number = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X{n}-lock"))
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait(lambda: os.path.exists(f"/tmp/.X11-unix/X{number}") or proc.poll() is not None):
        proc.kill()
    if proc.poll() is not None:
        pytest.skip(f"Xvfb :{number} did not start")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield os.environ["DISPLAY"]
    proc.terminate()
    proc.wait(5)
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=20).stdout


def _point_at(title: str, x: int, y: int) -> str:
    """Move the pointer into the window named ``title`` (focus follows it); returns its id.
    A window id found while an earlier test's window was going away can be stale by the time
    it is used (``mousemove`` then exits 1): look it up again."""
    end = time.monotonic() + 20
    while True:
        wid = _find_window(title)
        r = subprocess.run(["xdotool", "mousemove", "--window", wid, str(x), str(y)],
                           check=False, capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            return wid
        if time.monotonic() > end:
            raise AssertionError(f"cannot point at window {title!r} ({wid}): {r.stderr.strip()}")
        time.sleep(0.2)


def _find_window(title: str) -> str:
    """The X id of the window named ``title``.  ``xdotool search`` fails now and then when
    another window vanishes while it walks the tree (an earlier test's): ask again."""
    end = time.monotonic() + 20
    while True:
        r = subprocess.run(["xdotool", "search", "--sync", "--name", title],
                           check=False, capture_output=True, text=True, timeout=20)
        if r.returncode == 0 and r.stdout.split():
            return r.stdout.split()[0]
        if time.monotonic() > end:
            raise AssertionError(f"no window named {title!r}: {r.stderr.strip()}")
        time.sleep(0.2)


def _screenshot(path) -> np.ndarray:
    """The whole X screen as RGB."""
    subprocess.run(f"xwd -root -silent | convert xwd:- png:{path}", shell=True, check=True,
                   timeout=20)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _screenshot_when(path, ready, timeout: float = 30.0) -> np.ndarray:
    """A screenshot once ``ready(image)`` holds (the X server paints when it gets to it; on
    a loaded machine one screenshot alone can take seconds)."""
    end = time.monotonic() + timeout
    while True:
        shot = _screenshot(path)
        if ready(shot) or time.monotonic() > end:
            return shot
        time.sleep(0.2)


def _columns(img: np.ndarray, colour, row: int) -> np.ndarray:
    return np.flatnonzero((img[row] == colour).all(axis=1))


def _wait(cond, timeout=5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def window(display):
    controls, stats = LiveControls(), LiveStats()
    win = PreviewWindow(TITLE, controls=controls, stats=stats, model="fast",
                        backend="torch-cpu", state=PreviewState(view="denoised"))
    before = np.empty((360, 640, 3), np.uint8)
    before[:] = RED
    after = np.empty((360, 640, 3), np.uint8)
    after[:] = BLUE
    for i in range(5):
        f = Frame(image=after, index=i, original=before, sigma=12.3)
        stats.add_output(f)
        ticket = win.show(f)
        time.sleep(0.03)
    assert win.wait_drawn(ticket, 5.0), f"the window never drew a frame ({win._error!r})"
    # the window draws the newest frame and may skip ones that came while it was busy: how
    # many it drew varies, but each frame given was drawn or skipped, and the last one given
    # is the one on screen
    assert win.shown >= 1 and win.shown + win.skipped == 5 and win._current is f
    win.frame = f  # for tests that show more
    wid = _point_at(TITLE, 320, 180)  # focus follows the pointer
    yield win, wid
    controls.stop.set()
    win.close()


def test_split_view_screenshot_and_divider_drag(window, tmp_path):
    win, wid = window
    _sh("xdotool", "key", "s")
    assert _wait(lambda: win.state.view == "split")
    row = 180  # middle of the 640x360 window at the top-left of the screen
    shot = _screenshot_when(tmp_path / "split.png", lambda img: _columns(img, RED, row).size)
    red, blue = _columns(shot, RED, row), _columns(shot, BLUE, row)
    # Left half: the noisy input, right half: the denoised output, divider in the middle.
    assert red.min() == 0 and abs(red.max() - 318) <= 2
    assert abs(blue.min() - 321) <= 2 and blue.max() == 639
    assert (shot[row, 319:321] == 255).all()

    # Drag the divider to three quarters of the width.
    _sh("xdotool", "mousemove", "--window", wid, "320", "180", "mousedown", "1")
    _sh("xdotool", "mousemove", "--window", wid, "480", "180")
    _sh("xdotool", "mouseup", "1")
    assert _wait(lambda: win.state.divider == pytest.approx(0.75, abs=0.01))
    shot = _screenshot_when(tmp_path / "dragged.png",
                            lambda img: _columns(img, RED, row).max(initial=0) > 400)
    red, blue = _columns(shot, RED, row), _columns(shot, BLUE, row)
    assert abs(red.max() - 478) <= 2 and abs(blue.min() - 481) <= 2
    # The HUD sits in the top-left corner: darkened, with white text (anti-aliased: OpenCV 4
    # draws its text dimmer and thinner than OpenCV 5, whose brightest pixels reach 255).
    hud = shot[0:50, 0:250]
    assert (hud >= 200).all(axis=2).sum() > 200 and not (hud == RED).all(axis=2).any()


def test_keys_reach_controls_and_q_quits(window):
    win, _ = window
    for key in ("minus", "minus", "t", "m"):
        _sh("xdotool", "key", key)
    assert _wait(lambda: win.state.view == "map")
    assert win.controls.strength == pytest.approx(0.8) and win.controls.temporal
    _sh("xdotool", "key", "q")
    assert _wait(lambda: win.closed)
    assert win.controls.stop.is_set()


def _count_waits(monkeypatch) -> list[int]:
    """Record the delay of every ``cv2.waitKeyEx`` the window loop makes."""
    import stream.preview

    delays: list[int] = []
    real = stream.preview.cv2.waitKeyEx

    def spy(delay: int = 0) -> int:
        delays.append(delay)
        return real(delay)

    monkeypatch.setattr(stream.preview.cv2, "waitKeyEx", spy)
    return delays


def test_paused_window_sleeps_in_the_event_loop(window, monkeypatch):
    """Paused, the window draws nothing new and sleeps in 200 ms waits for keys (it would
    poll every 1 ms while playing): no busy loop, whatever the machine's load."""
    win, _ = window
    _sh("xdotool", "key", "space")
    assert _wait(lambda: win.controls.paused)
    time.sleep(0.3)  # the loop's current wait ends
    delays = _count_waits(monkeypatch)
    shown = win.shown
    ticket = win.show(win.frame)
    assert not win.wait_drawn(ticket, 1.0)  # paused: the new frame is not drawn
    assert delays and set(delays) == {200}, delays
    assert win.shown == shown
    _sh("xdotool", "key", "space")
    assert _wait(lambda: not win.controls.paused)
    assert win.wait_drawn(ticket, 5.0)


def test_cli_default_output_is_the_preview(display, tmp_path, monkeypatch, capsys):
    """``python -m stream clip.mp4`` (no output): the file plays in the window at its pace."""
    import re

    from conftest import IdentityEngine, add_noise, moving_scene, write_clip

    import stream.cli
    import stream.openers
    import stream.session

    clip = write_clip(tmp_path / "in.mp4", add_noise(moving_scene(15, 64, 48), 10),
                      audio=False)
    windows = []
    # The table is a module constant: the spy replaces its preview opener for this test.
    monkeypatch.setattr(stream.openers, "SINK_OPENERS", openers_spying_on_windows(windows))
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
    assert stream.cli.main([str(clip.path), "--view", "split", "--stats", "--sigma", "5"]) == 0
    err = capsys.readouterr().err
    m = re.search(r"stats: (\d+) frames shown/sent, (\d+) dropped", err)
    assert m and int(m[1]) + int(m[2]) == 15, err
    assert "-> preview" in err
    (win,) = windows
    assert win.closed and win.state.view == "split"
    # frames that came while it was drawing were skipped (a count that varies), every frame
    # sent was drawn or skipped, and the clip's last frame is the one left on screen
    assert win.shown >= 1 and win.shown + win.skipped == int(m[1]) and win._current.index == 14
    assert (win.model, win.backend) == ("identity", "identity")


def test_paused_live_run_waits_everywhere(display, tmp_path, monkeypatch, capsys):
    """The whole live path (paced file, processor, window) waits while paused: no frame is
    read, denoised or drawn, and the window sleeps in 200 ms waits (no busy loop)."""
    import threading

    from conftest import IdentityEngine, add_noise, moving_scene, write_clip

    import stream.cli
    import stream.openers
    import stream.session

    clip = write_clip(tmp_path / "in.mp4", add_noise(moving_scene(250, 64, 48), 10),
                      audio=False)  # 10 s at 25 fps: still playing when paused
    engine = IdentityEngine()
    sources, windows = [], []

    def source_spy(spec, run, controls):
        source = stream.openers.open_path(spec, run, controls)
        sources.append(source)
        return source

    monkeypatch.setattr(stream.openers, "SOURCE_OPENERS", (source_spy,))
    monkeypatch.setattr(stream.openers, "SINK_OPENERS", openers_spying_on_windows(windows))
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: engine)
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(
        stream.cli.main([str(clip.path), "--sigma", "5", "--quiet"])))
    run.start()
    try:
        _point_at("denoise preview", 100, 100)
        assert _wait(lambda: len(engine.calls) >= 3, timeout=20)  # playing
        (win,), (source,) = windows, sources
        _sh("xdotool", "key", "space")
        assert _wait(lambda: win.controls.paused)
        time.sleep(0.5)  # what was in flight when the key came lands
        delays = _count_waits(monkeypatch)
        before = len(engine.calls), source.frames_read, win.shown
        time.sleep(2.0)
        after = len(engine.calls), source.frames_read, win.shown
    finally:  # never leave the run and its window behind for the next tests
        subprocess.run(["xdotool", "key", "q"], check=False, capture_output=True, timeout=20)
        run.join(20)
    assert codes == [0]
    assert 0 < before[0] < 250 and after == before  # it was playing, then did nothing
    assert delays and set(delays) == {200}, delays

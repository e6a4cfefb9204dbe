"""The macOS arrangement (window loop on the main thread, pipeline on a worker), exercised
under Xvfb in a fresh process: OpenCV's Qt stays bound to the first thread that used it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, add_noise, moving_scene, write_clip

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None,
                                reason="needs Xvfb (apt-get install xvfb)")

SCRIPT = """
import sys, threading
import stream.cli, stream.openers, stream.preview, stream.session
sys.path += [{tests!r}, {tests!r} + "/stream"]
from conftest import IdentityEngine
from stream_helpers import openers_spying_on_windows
stream.preview.GUI_ON_MAIN_THREAD = True
stream.session.open_engine = lambda opts: IdentityEngine()
windows = []
stream.openers.SINK_OPENERS = openers_spying_on_windows(windows)
code = stream.cli.main([{clip!r}, "--stats", "--sigma", "5", "--view", "split"])
print("shown", windows[0].shown, "gui-thread", windows[0].gui_thread)
sys.exit(code)
"""


def test_window_loop_on_the_main_thread(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", add_noise(moving_scene(12, 64, 48), 10),
                      audio=False)
    number = next(n for n in range(150, 250) if not os.path.exists(f"/tmp/.X{n}-lock"))
    xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
        env = dict(os.environ, DISPLAY=f":{number}", PYTHONPATH=str(ROOT))
        code = SCRIPT.format(tests=str(ROOT / "tests"), clip=str(clip.path))
        res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                             text=True, env=env, timeout=120)
    finally:
        xvfb.terminate()
        xvfb.wait(5)
    assert res.returncode == 0, res.stderr
    m = re.search(r"stats: (\d+) frames shown/sent, (\d+) dropped", res.stderr)
    assert m and int(m[1]) + int(m[2]) == 12 and int(m[1]) >= 1, res.stderr
    shown = re.search(r"shown (\d+) gui-thread (\S+)", res.stdout)
    assert shown and int(shown[1]) >= 1 and shown[2] == "MainThread", res.stdout

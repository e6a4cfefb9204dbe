"""Ctrl-C / SIGTERM to a running `python -m stream`: exit 130, a playable file with its frames."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, add_noise, moving_scene, write_clip


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # Long enough that the run cannot finish before the signal arrives.
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_clip(path, add_noise(moving_scene(30, 160, 120), 8) * 20, audio=True)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_playable_output(long_clip, tmp_path, read, ffprobe, sig):
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream", str(long_clip.path), str(out), "--model", "fast",
         "--backend", "torch", "--device", "cpu", "--preset", "ultrafast", "--sigma", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        # wait until encoded packets reach the file (ultrafast: no lookahead, so the first
        # frame's packet is muxed, with the header, as soon as it is encoded)
        # (the file is written under a temporary name until it is finalised)
        while time.monotonic() < deadline and proc.poll() is None:
            partial = list(tmp_path.glob(".out.partial-*.mp4"))
            if partial and partial[0].stat().st_size > 0:
                break
            time.sleep(0.05)
        assert not out.exists()
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # renamed into place
    res = read(out)
    src_times = read(long_clip.path)["times"]
    n = len(res["frames"])
    # how many frames a run finishes before the signal depends on the machine; what must hold
    # is that it was stopped part way, kept something, and kept exactly the first n frames
    assert len(src_times) == 600 and 1 <= n < len(src_times)
    assert res["times"] == src_times[:n]
    assert len(res["audio"]) > 0
    assert ffprobe("-count_frames", "-select_streams", "v", "-show_entries",
                   "stream=nb_read_frames", "-of", "csv=p=0", str(out)).strip() == str(n)

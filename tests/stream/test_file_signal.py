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


def test_a_ctrl_c_during_the_join_still_waits_for_the_motion_reading(monkeypatch):
    """A KeyboardInterrupt that lands while the processor waits for the smoothing's motion
    thread: the thread is still waited for (no OpenCV job outlives the run), then the
    interrupt goes on."""
    import threading

    import numpy as np

    from models.still_camera import StillCameraFilter
    from stream.frame import Frame
    from stream.temporal import SmoothingStage

    follow = StillCameraFilter.follow

    def slow_follow(self, *args, **kwargs):  # still running when the processor waits for it
        time.sleep(0.3)
        return follow(self, *args, **kwargs)

    monkeypatch.setattr(StillCameraFilter, "follow", slow_follow)
    stage = SmoothingStage("auto")
    img = np.full((48, 64, 3), 128, np.uint8)
    stage.prepare(Frame(image=img, index=0), 10.0)
    motion = stage._motion
    assert motion is not None and not motion.daemon
    real_join, calls = threading.Thread.join, []

    def join(self, timeout=None):
        calls.append(self)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    with pytest.raises(KeyboardInterrupt):
        stage.settle()
    assert len(calls) == 2  # interrupted once, then waited for
    assert not motion.is_alive() and stage._motion is None


def test_an_error_left_by_an_interrupt_reads_as_the_interrupt(monkeypatch, capsys):
    """Ctrl-C inside a library's start-up comes back as that library's error (ONNX Runtime's
    import: "initialization failed"); the run says it was interrupted, exit 130."""
    import stream.cli
    from stream.errors import UserError

    def run(options):
        stream.cli._Interrupts.seen = True  # as the SIGINT handler notes it
        raise UserError("backend 'onnxruntime' is unavailable here: initialization failed")

    monkeypatch.setattr(stream.cli, "run", run)
    assert stream.cli.main(["in.mp4", "out.mp4"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    monkeypatch.setattr(stream.cli, "run", lambda options: (_ for _ in ()).throw(UserError("bad")))
    assert stream.cli.main(["in.mp4", "out.mp4"]) == 2  # no interrupt: the error itself
    assert capsys.readouterr().err.strip() == "error: bad"

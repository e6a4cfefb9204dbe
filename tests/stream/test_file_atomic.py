"""Issue 12: a file output is written under a temporary name and renamed into place, so it is
absent, as it was, or one complete file from one run; never half written, never a mix."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, add_noise, moving_scene, read_video, write_clip

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("atomic") / "clip.mp4"
    return write_clip(path, add_noise(moving_scene(40, 96, 64), 8), audio=True)


def test_output_appears_only_when_finalised(clip, tmp_path, monkeypatch):
    from stream import avsink

    seen: list[list[str]] = []
    real_write = avsink.AVSink._write

    def spy(self, frame):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return real_write(self, frame)

    monkeypatch.setattr(avsink.AVSink, "_write", spy)
    out = tmp_path / "o.mp4"
    assert main([str(clip.path), str(out), "--sigma", "10", *FAST]) == 0
    assert len(seen) == 40
    # while it runs only the hidden partial file exists; at the end only the output
    assert all(len(names) == 1 and names[0].startswith(".o.partial-") and
               names[0].endswith(".mp4") for names in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    assert len(read_video(out)["frames"]) == 40


def test_concurrent_writers_give_one_complete_file(clip, tmp_path):
    out = tmp_path / "o.mp4"
    cmd = [sys.executable, "-m", "stream", str(clip.path), str(out), "-y", "--sigma", "10",
           "--preset", "ultrafast", *FAST]
    procs = [subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    res = read_video(out)
    assert len(res["frames"]) == 40 and res["times"] == read_video(clip.path)["times"]


def _limit_file_size() -> None:
    # a full disk, as far as the writer can tell: writes past 100 kB fail with EFBIG (the ffv1 output is about 270 kB)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


@pytest.mark.parametrize("overwrite", [False, True])
def test_full_disk_keeps_no_partial_file(clip, tmp_path, overwrite):
    out = tmp_path / "o.mkv"
    if overwrite:
        out.write_bytes(b"keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "stream", str(clip.path), str(out), "--codec", "ffv1",
         "--sigma", "10", *(["-y"] if overwrite else []), *FAST],
        env=ENV, capture_output=True, timeout=300, preexec_fn=_limit_file_size, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write") and \
        "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["o.mkv"] if overwrite else [])
    if overwrite:
        assert out.read_bytes() == b"keep me"


def test_failed_open_leaves_no_file(clip, tmp_path, capsys):
    for name in ("o.xyz", "o.webm"):
        argv = [str(clip.path), str(tmp_path / name), *FAST]
        if name == "o.webm":
            argv += ["--codec", "h264"]
        assert main(argv) == 2
    assert list(tmp_path.iterdir()) == []


def test_image_output_written_whole(tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((20, 30, 3), 90, np.uint8))
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    assert main([str(src), str(out), "-y", "--sigma", "5", *FAST]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]
    assert cv2.imread(str(out)).shape == (20, 30, 3)

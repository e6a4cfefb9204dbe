"""Issue 12: --start, --duration and --frames denoise part of an input; the output starts at 0
and copied audio is cut and shifted to match."""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from conftest import IdentityEngine, add_noise, moving_scene, read_video, write_clip

from stream import cli, session

ARGS = ["--sigma", "5", "--temporal", "off", "--quiet", "--codec", "ffv1"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("part")
    # key frames every 10 frames, so seeking lands before --start and decoding catches up
    return write_clip(d / "c.mp4", add_noise(moving_scene(100, 64, 48), 8), audio=True,
                      options={"preset": "ultrafast", "g": "10"})


@pytest.fixture
def identity(monkeypatch):
    monkeypatch.setattr(session, "open_engine", lambda opts: IdentityEngine())


@pytest.mark.parametrize("args, first, count", [
    (["--start", "1", "--duration", "2"], 25, 50),
    (["--start", "0:01.4"], 35, 65),
    (["--duration", "0.5"], 0, 12 + 1),  # frames at 0, 0.04 .. 0.48
    (["--frames", "7"], 0, 7),
    (["--start", "2", "--frames", "3"], 50, 3),
])
def test_part_of_a_video(clip, tmp_path, identity, args, first, count):
    out = tmp_path / "o.mkv"
    assert cli.main([str(clip.path), str(out), *ARGS, *args]) == 0
    src, res = read_video(clip.path), read_video(out)
    assert len(res["frames"]) == count
    # the same pictures (ffv1 through the identity engine keeps them bit for bit)
    for a, b in zip(src["frames"][first:first + count], res["frames"]):
        assert np.array_equal(a, b)
    assert res["times"][0] == 0
    assert res["times"] == [t - src["times"][first] for t in src["times"][first:first + count]]
    # audio: cut to the same span (AAC packets are 1024 samples, 21.3 ms)
    seconds = float(count * Fraction(1, 25))
    assert abs(len(res["audio"]) * 1024 / 48000 - seconds) < 0.1


def test_start_on_a_pipe(clip, tmp_path, identity, monkeypatch):
    """Y4M on stdin cannot seek: frames before --start are decoded and dropped."""
    import io
    import sys

    from test_fuzz_inputs import y4m_bytes

    frames = moving_scene(20, 32, 24)

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(y4m_bytes(frames)))

        def isatty(self) -> bool:
            return False

    monkeypatch.setattr(sys, "stdin", Stdin())
    out = tmp_path / "o.mkv"
    assert cli.main(["-", str(out), *ARGS, "--start", "0.4"]) == 0
    assert len(read_video(out)["frames"]) == 10


def test_start_past_the_end(clip, tmp_path, identity, capsys):
    assert cli.main([str(clip.path), str(tmp_path / "o.mkv"), *ARGS, "--start", "60"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no frames at or after --start 60 s in {clip.path}; nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_frames_on_a_folder_and_start_refused(tmp_path, identity, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        cv2.imwrite(str(src / f"{i}.png"), np.full((8, 8, 3), i * 10, np.uint8))
    assert cli.main([str(src), str(tmp_path / "out"), *ARGS, "--frames", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]
    assert cli.main([str(src), str(tmp_path / "out2"), *ARGS, "--start", "1"]) == 2
    assert "--start and --duration take a video input" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--start", "-1"], "--start: expected a time in seconds or [HH:]MM:SS, 0 or more"),
    (["--start", "1:x"], "--start: expected a time"),
    (["--duration", "nan"], "--duration: expected a time"),
    (["--duration", "0"], "--duration: expected a time above 0, got 0"),
    (["--frames", "0"], "--frames: expected an integer of 1 or more, got '0'"),
])
def test_bad_part_options(clip, tmp_path, identity, capsys, args, words):
    assert cli.main([str(clip.path), str(tmp_path / "o.mkv"), *ARGS, *args]) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

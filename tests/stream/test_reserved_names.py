"""Issue 12: reserved words (webcam, 0, preview, vcam, bench) never hide a real file or folder
of that name; ``./name`` is always a path."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from conftest import read_video

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet", "--sigma", "5"]


@pytest.mark.parametrize("name", ["webcam", "webcam1", "0", "bench", "preview", "vcam"])
def test_existing_file_named_like_a_reserved_word_is_the_input(tmp_path, monkeypatch,
                                                               clip_with_audio, name):
    monkeypatch.chdir(tmp_path)
    shutil.copy(clip_with_audio.path, tmp_path / name)  # a video file without a suffix
    assert main([name, "out.mp4", *FAST]) == 0
    assert len(read_video(tmp_path / "out.mp4")["frames"]) == 12


@pytest.mark.parametrize("name", ["preview", "window", "vcam"])
def test_existing_folder_named_like_a_reserved_word_is_the_output(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.full((12, 16, 3), 80, np.uint8))
    (tmp_path / name).mkdir()
    assert main(["in", name, *FAST]) == 0
    assert [p.name for p in (tmp_path / name).iterdir()] == ["a.png"]


def test_dot_slash_is_always_a_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["./webcam", "out.mp4", *FAST]) == 2  # not the camera
    assert "input not found: ./webcam" in capsys.readouterr().err


def test_reserved_words_still_mean_their_device_without_a_file(tmp_path, monkeypatch):
    from stream.openers import is_camera_input

    monkeypatch.chdir(tmp_path)
    assert is_camera_input("webcam") and is_camera_input("0")
    (tmp_path / "0").write_bytes(b"x")
    assert not is_camera_input("0") and is_camera_input("/dev/video0")

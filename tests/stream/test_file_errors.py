"""Each bad input: one line on stderr, exit 2, no traceback, nothing overwritten."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet"]


def run_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_missing_input(capsys, tmp_path):
    line = run_error(capsys, [str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"), *FAST])
    assert "not found" in line
    assert not (tmp_path / "o.mp4").exists()


def test_corrupt_input(capsys, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    line = run_error(capsys, [str(bad), str(tmp_path / "o.mp4"), *FAST])
    assert "cannot read" in line
    assert not (tmp_path / "o.mp4").exists()


def test_empty_input(capsys, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "cannot read" in run_error(capsys, [str(empty), str(tmp_path / "o.mp4"), *FAST])


def test_no_video_stream(capsys, tmp_path):
    import av

    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as out:
        s = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for pkt in [*s.encode(frame), *s.encode(None)]:
            out.mux(pkt)
    line = run_error(capsys, [str(audio_only), str(tmp_path / "o.mp4"), *FAST])
    assert "no video stream" in line


def test_unknown_codec(capsys, clip_with_audio, tmp_path):
    line = run_error(capsys, [str(clip_with_audio.path), str(tmp_path / "o.mp4"),
                              "--codec", "nosuchcodec", *FAST])
    assert "unknown codec" in line
    assert not (tmp_path / "o.mp4").exists()


def test_codec_the_container_cannot_hold(capsys, clip_with_audio, tmp_path):
    line = run_error(capsys, [str(clip_with_audio.path), str(tmp_path / "o.webm"),
                              "--codec", "h264", *FAST])
    assert "cannot be stored" in line
    assert not (tmp_path / "o.webm").exists()


def test_unknown_output_format(capsys, clip_with_audio, tmp_path):
    line = run_error(capsys, [str(clip_with_audio.path), str(tmp_path / "o.nosuchext"), *FAST])
    assert "cannot write" in line


def test_output_exists_without_y(capsys, clip_with_audio, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    assert "-y" in run_error(capsys, [str(clip_with_audio.path), str(out), *FAST])
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("overwrite", [[], ["-y"]])
def test_output_is_input(capsys, clip_with_audio, tmp_path, overwrite):
    before = clip_with_audio.path.read_bytes()
    same = tmp_path / "link.mp4"
    same.symlink_to(clip_with_audio.path)
    for out in (clip_with_audio.path, same):
        assert "is the input" in run_error(
            capsys, [str(clip_with_audio.path), str(out), *overwrite, *FAST])
    assert clip_with_audio.path.read_bytes() == before


def test_output_unwritable(capsys, clip_with_audio, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out in (a_file / "o.mp4", tmp_path / "missing" / "o.mp4", Path("/proc/o.mp4")):
        assert "cannot write" in run_error(capsys, [str(clip_with_audio.path), str(out), *FAST])


def test_output_folder_not_empty_without_y(capsys, tmp_path):
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep")
    assert "-y" in run_error(capsys, [str(src), str(out), *FAST])
    assert (out / "a.png").read_bytes() == b"keep"


@pytest.mark.parametrize("args, words", [
    (["--sigma", "300"], "--sigma: expected a number in 0..255 or 'auto', got '300'"),
    (["--sigma", "abc"], "--sigma: expected a number in 0..255 or 'auto', got 'abc'"),
    (["--sigma", "nan"], "--sigma: expected a number in 0..255 or 'auto', got 'nan'"),
    (["--model", "nosuchmodel"], "nosuchmodel"),
    (["--backend", "nosuch"], "nosuch"),
    (["--temporal", "weird"], "--temporal"),
    (["--strength", "-1"], "--strength: expected a number in 0..10, got '-1'"),
    # issue 12: inf was a traceback, nan denoised nothing, 1e6 gave a black video
    (["--strength", "inf"], "--strength: expected a number in 0..10, got 'inf'"),
    (["--strength", "nan"], "--strength: expected a number in 0..10, got 'nan'"),
    (["--strength", "1e6"], "--strength: expected a number in 0..10, got '1e6'"),
    # issue 12: nan/inf were tracebacks, 0 silently became 25, -5 gave the system's text
    (["--fps", "nan"], "--fps: expected a number above 0 up to 1000, got 'nan'"),
    (["--fps", "inf"], "--fps: expected a number above 0 up to 1000, got 'inf'"),
    (["--fps", "0"], "--fps: expected a number above 0 up to 1000, got '0'"),
    (["--fps", "-5"], "--fps: expected a number above 0 up to 1000, got '-5'"),
    (["--crf", "-5"], "--crf: expected an integer in 0..63, got '-5'"),
    (["--crf", "1.5"], "--crf: expected an integer in 0..63, got '1.5'"),
    (["--crf", "60"], "--crf: libx264 takes 0..51, got 60"),
    (["--preset", "warp"], "--preset: expected one of ultrafast, superfast"),
    (["--pix-fmt", "bogus"], "--pix-fmt: codec libx264 cannot encode bogus"),
    (["--timeout", "0"], "--timeout: expected a number above 0"),
    (["--nosuchoption"], "unrecognized arguments: --nosuchoption"),
])
def test_bad_options(capsys, clip_with_audio, tmp_path, args, words):
    argv = [str(clip_with_audio.path), str(tmp_path / "o.mp4"), "--quiet", *args]
    assert words in run_error(capsys, argv)
    assert list(tmp_path.iterdir()) == []  # not even an empty or partial file


def test_single_image_output_for_a_video(capsys, clip_with_audio, tmp_path):
    line = run_error(capsys, [str(clip_with_audio.path), str(tmp_path / "o.png"), *FAST])
    assert "folder" in line


def test_cover_art_is_not_a_video(capsys, tmp_path):
    import shutil
    import subprocess

    import cv2

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    cover = tmp_path / "cover.png"
    cv2.imwrite(str(cover), np.full((16, 16, 3), 99, np.uint8))
    song = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-i", str(cover),
                    "-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png",
                    "-disposition:v", "attached_pic", str(song)], check=True, timeout=60)
    assert "no video stream" in run_error(capsys, [str(song), str(tmp_path / "o.mp4"), *FAST])


def test_video_to_a_terminal_is_refused(capsys, clip_with_audio, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert "terminal" in run_error(capsys, [str(clip_with_audio.path), "-", *FAST])

"""``--profile`` against the frame size it was made for, and through the live path.

A clip profile holds for its frame size only (a camera scales its noise with the picture
size): another size is refused with one line, exit 2, before any output exists, for a file
run, a ``--realtime`` run and the preview. Through the live path (``--realtime``) a profile
gives the very frames the file path gives with it, and others than without it. The tune runs
2 steps on tiny data (as in test_calibrate_cli.py, whose helpers make the frames).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_clip
from stream_helpers import quick_calibration
from test_calibrate_cli import noisy_frames, write

from stream.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return quick_calibration(tmp_path, monkeypatch)


@pytest.fixture
def desk(tmp_path: Path, cache: Path) -> dict:
    """A profile ``desk`` calibrated on a still 96x64 clip (PNG frames); its profile.json."""
    clip = tmp_path / "still"
    clip.mkdir()
    for i, f in enumerate(noisy_frames(16)[1]):
        write(clip / f"{i:03d}.png", f)
    assert main(["calibrate", str(clip), "--name", "desk", "--steps", "2", "-q"]) == 0
    prof = json.loads((cache / "desk" / "profile.json").read_text())
    assert prof["kind"] == "clip" and prof["size"] == [96, 64]
    return prof


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_another_frame_size_is_refused_everywhere(desk: dict, tmp_path: Path, cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    big = noisy_frames(6, size=(96, 128), seed=3)[1]  # 128x96 frames of the same camera
    write(tmp_path / "big.png", big[0])
    clip = write_clip(tmp_path / "big.mp4", list(big), audio=False).path
    capsys.readouterr()
    expected = "--profile desk was made for 96x64 frames, not 128x96"
    runs = {
        "file": [str(tmp_path / "big.png"), str(tmp_path / "out.png")],
        "realtime": [str(clip), str(tmp_path / "out.mkv"), "--realtime", "--codec", "ffv1"],
        "preview": [str(clip)],  # no output named: the preview window
    }
    monkeypatch.delenv("DISPLAY", raising=False)  # the size is refused before a window is asked
    for kind, argv in runs.items():
        assert main([*argv, "--profile", "desk", "--temporal", "off", "-q"]) == 2, kind
        line = one_error_line(capsys.readouterr().err)
        assert expected in line, (kind, line)
        what = "STILL_CLIP_128x96" if kind == "file" else str(clip)  # a picture cannot be one
        assert f"python -m stream calibrate {what} --name desk-128x96)" in line, line
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.mkv").exists()

    # the right size passes the same door (the size is (width, height), not (height, width))
    small = noisy_frames(1, seed=4)[1][0]
    write(tmp_path / "small.png", small)
    assert main([str(tmp_path / "small.png"), str(tmp_path / "ok.png"), "--profile", "desk",
                 "--temporal", "off", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "ok.png").exists()

    # another model, through the live path: one line too, nothing written
    assert main([*runs["realtime"], "--profile", "desk", "--model", "base", "-q"]) == 2
    assert "--profile desk was made for model fast, not base" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.mkv").exists()


def test_profiles_without_a_frame_size(desk: dict, tmp_path: Path, cache: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "big.png", noisy_frames(1, size=(96, 128), seed=3)[1][0])
    argv = [str(tmp_path / "big.png"), str(tmp_path / "out.png"), "--profile", "desk",
            "--temporal", "off", "-q"]
    # a clip profile from before sizes were kept: used, with one warning line
    (cache / "desk" / "profile.json").write_text(json.dumps({k: v for k, v in desk.items() if k != "size"}))
    caplog.clear()
    assert main(argv) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "does not say which frame size it was made for" in warned[0], warned
    assert (tmp_path / "out.png").exists()
    # a --pairs profile (photos, no frame size): any size, no warning
    (cache / "desk" / "profile.json").write_text(json.dumps({**desk, "kind": "pairs", "size": None}))
    (tmp_path / "out.png").unlink()
    caplog.clear()
    assert main(argv) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert (tmp_path / "out.png").exists()
    capsys.readouterr()
    assert main(["profiles"]) == 0
    assert capsys.readouterr().out.startswith("desk\tfast\tpairs (16)\t")


def test_profile_through_the_live_path(desk: dict, tmp_path: Path, cache: Path, read,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--realtime (a clip as a live source, the session the camera and the preview use):
    with the profile the frames are exactly the file path's with it, and differ from the
    run without it and from the profile's other noise map."""
    frames = noisy_frames(10, seed=5)[1]
    clip = write_clip(tmp_path / "in.mkv", list(frames), codec="ffv1", pix_fmt="bgr0",
                      audio=False).path
    common = ["--temporal", "off", "--backend", "torch", "--codec", "ffv1", "--pix-fmt", "bgr0", "-q"]

    def run(name: str, *extra: str) -> dict:
        out = tmp_path / f"{name}.mkv"
        assert main([str(clip), str(out), *common, *extra]) == 0, capsys.readouterr().err
        return read(out)

    results = {}
    for noise_map in ("nlf", "estimate"):
        (cache / "desk" / "profile.json").write_text(json.dumps({**desk, "noise_map": noise_map}))
        results[noise_map] = run(f"live-{noise_map}", "--realtime", "--profile", "desk")
        # (the Wiener pass a file job adds after the network is not run live: left out here)
        results[f"file-{noise_map}"] = run(f"file-{noise_map}", "--profile", "desk", "--wiener", "off")
    results["none"] = run("live-none", "--realtime")
    for noise_map in ("nlf", "estimate"):
        live, file = results[noise_map], results[f"file-{noise_map}"]
        assert len(file["frames"]) == 10 and 1 <= len(live["frames"]) <= 10  # a slow moment drops
        by_time = dict(zip(file["times"], file["frames"]))
        for t, f in zip(live["times"], live["frames"]):
            assert np.array_equal(f, by_time[t]), (noise_map, t)
    none = dict(zip(results["none"]["times"], results["none"]["frames"]))
    nlf = dict(zip(results["nlf"]["times"], results["nlf"]["frames"]))
    est = dict(zip(results["estimate"]["times"], results["estimate"]["frames"]))
    for t in set(none) & set(nlf):
        diff = np.abs(none[t].astype(int) - nlf[t]).mean()
        assert diff > 0.5, (t, diff)  # the tuned weights, not the shipped ones
    assert any(not np.array_equal(est[t], nlf[t]) for t in set(est) & set(nlf))  # the NLF map


def test_a_camera_at_another_size_is_told_to_ask_for_it(desk: dict, cache: Path) -> None:
    from models.calibrate_profile import load_profile
    from stream.errors import UserError
    from stream.profiles import check_size

    profile = load_profile("desk")
    check_size(profile, 96, 64, "webcam", camera=True)  # its own size: taken
    with pytest.raises(UserError) as err:
        check_size(profile, 1280, 720, "webcam", camera=True)
    assert str(err.value) == (
        "--profile desk was made for 96x64 frames, not 1280x720 (webcam); a camera's noise "
        "changes with the picture size: calibrate for this one (python -m stream calibrate "
        "webcam --size 1280x720 --name desk-1280x720)")

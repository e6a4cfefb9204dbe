"""Virtual camera output with a stand-in camera (no v4l2loopback / OBS needed), and its
error messages."""
from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import IdentityEngine, add_noise, moving_scene, write_clip

import stream.cli
import stream.session
import stream.vcam
from stream.cli import main
from stream.frame import Frame
from stream.vcam import VirtualCameraError, VirtualCameraSink, fix_hint, open_camera


class FakeCam:
    def __init__(self, width, height, fps, device=None):
        self.width, self.height, self.fps = width, height, fps
        self.device = device or "/dev/video42"
        self.sent: list[np.ndarray] = []
        self.closed = False

    def send(self, image):
        assert image.flags.c_contiguous
        self.sent.append(image.copy())

    def close(self):
        self.closed = True


def test_sink_sends_rgb_and_resizes_to_the_camera_size():
    cam = FakeCam(64, 48, 25)
    sink = VirtualCameraSink(64, 48, 25, camera=cam)
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 255
    sink.write(Frame(image=red, index=0))
    sink.write(Frame(image=np.full((96, 128, 3), 77, np.uint8), index=1))  # size changed
    sink.close()
    assert [a.shape for a in cam.sent] == [(48, 64, 3), (48, 64, 3)]
    assert cam.sent[0][0, 0].tolist() == [255, 0, 0]  # RGB order kept
    assert (cam.sent[1] == 77).all()
    assert sink.frames_written == 2 and cam.closed


def test_file_to_virtual_camera_through_the_cli(tmp_path, monkeypatch, capsys):
    clip = write_clip(tmp_path / "in.mp4", add_noise(moving_scene(10, 64, 48), 10),
                      audio=False)
    cams: list[FakeCam] = []

    def fake_open(width, height, fps, device=None):
        cams.append(FakeCam(width, height, fps, device))
        return cams[-1]

    monkeypatch.setattr(stream.vcam, "open_camera", fake_open)
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
    assert main([str(clip.path), "vcam:/dev/video42", "--sigma", "5", "--stats"]) == 0
    err = capsys.readouterr().err
    m = re.search(r"stats: (\d+) frames shown/sent, (\d+) dropped", err)
    assert m, err
    (cam,) = cams
    assert (cam.width, cam.height, cam.fps, cam.device) == (64, 48, 25.0, "/dev/video42")
    assert len(cam.sent) == int(m[1]) and int(m[1]) + int(m[2]) == 10
    assert all(a.shape == (48, 64, 3) and a.dtype == np.uint8 for a in cam.sent)
    assert cam.closed


@pytest.mark.parametrize("platform,needle", [
    ("linux", "sudo modprobe v4l2loopback devices=1 exclusive_caps=1"),
    ("win32", "OBS Studio"), ("darwin", "Start Virtual Camera")])
def test_fix_hint_per_platform(platform, needle):
    assert needle in fix_hint(platform)


def test_backend_failure_becomes_one_line_with_the_fix(monkeypatch):
    import pyvirtualcam

    def fail(*args, **kwargs):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at "
                           "/dev/video[0-99]. Did you run 'modprobe v4l2loopback'?")

    monkeypatch.setattr(pyvirtualcam, "Camera", fail)
    with pytest.raises(VirtualCameraError) as info:
        open_camera(64, 48, 25)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("no virtual camera ('v4l2loopback' backend: No v4l2 loopback device")
    assert msg.endswith(fix_hint())

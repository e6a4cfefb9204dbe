"""The live path through ``python -m stream`` without a camera: a file played as a live
source, drops when the processor is slow, latency numbers, a (fake) camera to a file, a UDP
stream read back over loopback, and the no-camera / no-virtual-camera errors."""
from __future__ import annotations

import _thread
import re
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import IdentityEngine, add_noise, moving_scene, write_clip

import stream.camera
import stream.cli
import stream.session
from stream.cli import main


class SlowEngine(IdentityEngine):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def infer(self, frames, sigma, prev=None):
        time.sleep(self.seconds)
        return super().infer(frames, sigma, prev)


@pytest.fixture
def clip20(tmp_path_factory):
    """20 frames of 64x48 at 25 fps (0.8 s), no audio."""
    path = tmp_path_factory.mktemp("live") / "in.mp4"
    return write_clip(path, add_noise(moving_scene(20, 64, 48), 10), audio=False)


def _stats(err: str) -> dict[str, float]:
    m = re.search(r"stats: (\d+) frames shown/sent, (\d+) dropped", err)
    lat = re.search(r"end-to-end latency\s+p50 ([\d.]+) ms\s+p90 ([\d.]+)", err)
    assert m and lat, err
    return {"frames": int(m[1]), "dropped": int(m[2]), "p50": float(lat[1]),
            "p90": float(lat[2])}


def test_file_as_live_source_through_the_live_path(clip20, tmp_path, read, monkeypatch,
                                                   capsys):
    engine = IdentityEngine()
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: engine)
    out = tmp_path / "out.mkv"
    t0 = time.perf_counter()
    assert main([str(clip20.path), str(out), "--realtime", "--stats", "--codec", "ffv1",
                 "--sigma", "5"]) == 0
    elapsed = time.perf_counter() - t0
    s = _stats(capsys.readouterr().err)
    assert elapsed >= 0.75  # paced: 20 frames at 25 fps cannot finish sooner than 0.76 s
    assert s["frames"] + s["dropped"] == 20
    res = read(out)
    assert len(res["frames"]) == s["frames"] and res["size"] == (64, 48)
    # the live default --model auto times its start tier twice before the first frame (the
    # switcher's probe, told 10 levels), then every frame is denoised once at the level asked,
    # or below it where the still background's inputs were averaged (``--temporal auto``: the
    # clip's noise, H.264-compressed, reads coarse; the first frame has nothing to average)
    assert engine.calls[:2] == [10.0, 10.0] and len(engine.calls) == 2 + s["frames"]
    assert engine.calls[2] == 5.0 and all(0.0 < c <= 5.0 for c in engine.calls[2:])
    assert 0.0 < s["p50"] <= s["p90"] < 2000.0  # measured, from capture to written


def test_slow_processor_drops_oldest_frames_and_counts_them(clip20, tmp_path, read,
                                                            monkeypatch, capsys):
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: SlowEngine(0.15))
    out = tmp_path / "out.mkv"
    # frame by frame (``--temporal off``): the last frame out is then the identity engine's
    # copy of the clip's last frame (``auto`` averages the still background of the clip)
    assert main([str(clip20.path), str(out), "--realtime", "--stats", "--codec", "ffv1",
                 "--sigma", "5", "--temporal", "off"]) == 0
    s = _stats(capsys.readouterr().err)
    assert s["dropped"] > 0
    assert s["frames"] + s["dropped"] == 20  # every frame either shown or counted as dropped
    res = read(out)
    assert len(res["frames"]) == s["frames"]
    # Newest-frame policy: the last frame of the clip always gets through.
    src = read(clip20.path)
    assert res["times"][-1] == src["times"][-1]
    assert np.array_equal(res["frames"][-1], src["frames"][-1])  # identity engine, ffv1
    # Times stay the source's: a later written frame never gets an earlier timestamp.
    assert res["times"] == sorted(res["times"])


class FakeCapture:
    """A camera giving ``n`` grey-level frames (BGR), then vanishing."""

    def __init__(self, n: int, size=(80, 60)):
        self.n, self.size, self.i = n, size, 0

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        return 0.0

    def grab(self):
        time.sleep(0.01)
        self.i += 1
        return self.i <= self.n

    def retrieve(self):
        return True, np.full((self.size[1], self.size[0], 3), self.i * 10 % 256, np.uint8)

    def read(self):
        return self.grab(), self.retrieve()[1]

    def release(self):
        pass


def test_camera_to_file_then_ctrl_c(tmp_path, read, monkeypatch, capsys):
    """A (fake) camera through the live path; Ctrl-C while it is gone leaves a playable file."""
    caps = [FakeCapture(12)]
    interrupted: list[bool] = []

    def factory(device):
        if caps:
            return caps.pop(0)
        if not interrupted:
            interrupted.append(True)
            _thread.interrupt_main()  # Ctrl-C while the camera is unplugged
        return None

    monkeypatch.setattr(stream.camera, "_open_capture", factory)
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
    out = tmp_path / "cam.mkv"
    assert main(["webcam", str(out), "--codec", "ffv1", "--sigma", "5", "--stats"]) == 130
    err = capsys.readouterr().err
    assert "camera 0: 80x60 at 30 fps" in err  # granted mode printed (fps fallback 30)
    assert "camera 0 lost; retrying" in err
    s = _stats(err)
    res = read(out)
    assert res["size"] == (80, 60)
    assert len(res["frames"]) == s["frames"] and s["frames"] + s["dropped"] == 11
    assert s["frames"] >= 1


def test_no_camera_is_one_line_exit_2(capsys):
    if Path("/dev/video97").exists():
        pytest.skip("/dev/video97 exists here")
    assert main(["/dev/video97"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no camera at /dev/video97") and err.count("\n") == 1


def test_no_virtual_camera_names_the_fix(clip20, monkeypatch, capsys):
    import pyvirtualcam

    try:
        pyvirtualcam.Camera(64, 48, 25).close()
        pytest.skip("a virtual camera backend works here")
    except RuntimeError:
        pass
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
    assert main([str(clip20.path), "vcam"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no virtual camera")
    if sys.platform.startswith("linux"):
        assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1" in err


def test_no_pyvirtualcam_names_the_extra(clip20, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails
    assert main([str(clip20.path), "vcam"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'denoise-stream[vcam]'" in err and err.count("\n") == 1


@pytest.mark.slow
def test_udp_stream_read_back_over_loopback(clip20, monkeypatch):
    """The receiving socket is bound before the first datagram is sent (no wait for a
    receiver to come up), so a file source's 20 frames must all arrive."""
    import io

    import av

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        datagrams: list[bytes] = []
        done = threading.Event()

        def receive() -> None:  # until the sender has finished and the socket is drained
            sock.settimeout(0.2)
            while True:
                try:
                    datagrams.append(sock.recv(65536))
                except TimeoutError:
                    if done.is_set():
                        return

        listener = threading.Thread(target=receive, daemon=True)
        listener.start()
        monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
        # Not --realtime: a file source never drops, so all 20 frames must arrive.
        try:
            assert main([str(clip20.path), f"udp://127.0.0.1:{port}", "--sigma", "5",
                          "--quiet"]) == 0
        finally:
            done.set()
            listener.join(20)
    assert datagrams
    with av.open(io.BytesIO(b"".join(datagrams)), format="mpegts") as c:
        frames = [(f.width, f.height) for f in c.decode(c.streams.video[0])]
    assert frames == [(64, 48)] * 20


class RecurrentEngine(IdentityEngine):
    """A stand-in for a recurrent model: records whether each frame got the previous output."""

    temporal = True

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.prevs: list[bool] = []

    def infer(self, frames, sigma, prev=None):
        self.prevs.append(prev is not None)
        return super().infer(frames, sigma, prev)


def test_temporal_key_cannot_switch_off_a_recurrent_model(clip20, tmp_path, monkeypatch,
                                                          caplog):
    """``--temporal auto`` with base picks the released recurrent twin (base-temporal, light
    smoothing after it).  Pressing ``t`` must leave the HUD at "temporal on": the recurrent
    model keeps running whatever the key says (it once showed "temporal off")."""
    import stream.livecli

    engines: list[RecurrentEngine] = []

    def fake_open(denoise):
        engines.append(RecurrentEngine(denoise.model))
        return engines[-1]

    seen: list[tuple[int, bool]] = []

    class PressT(stream.livecli.LiveProcessor):
        def __call__(self, frame):
            if frame.index == 3:
                self.controls.temporal = False  # the t key
            out = super().__call__(frame)
            seen.append((frame.index, self.controls.temporal))
            return out

    import models

    real = models.load_metadata  # base-temporal released for auto with light smoothing after it
    monkeypatch.setattr(models, "load_metadata", lambda name: {"status": "trained",
                        "temporal_auto": "light"} if name == "base-temporal" else real(name))
    monkeypatch.setattr(stream.session, "open_engine", fake_open)
    monkeypatch.setattr(stream.livecli, "LiveProcessor", PressT)
    out = tmp_path / "out.mkv"
    with caplog.at_level("WARNING"):
        assert main([str(clip20.path), str(out), "--realtime", "--codec", "ffv1",
                     "--sigma", "5", "--quiet", "--model", "base", "--temporal", "auto"]) == 0
    (engine,) = engines
    assert engine.model == "base-temporal"
    assert "the recurrent model base-temporal stays on" in caplog.text
    assert seen and all(on for _, on in seen), seen  # the HUD reads controls.temporal
    # every frame after the first got its predecessor's output, before and after the key
    assert engine.prevs[0] is False and all(engine.prevs[1:]), engine.prevs


def _x264_subme(path: Path) -> int:
    """The motion-estimation effort x264 wrote into the stream's settings (its SEI): 2 for
    veryfast, 6 for fast."""
    m = re.search(rb"x264 - core .*? subme=(\d+)", path.read_bytes(), re.DOTALL)
    assert m, "no x264 settings in the stream"
    return int(m[1])


def test_a_live_recording_encodes_with_veryfast(clip20, tmp_path, read, monkeypatch, capsys):
    """A live run shares the cores with the encoder as it goes: x264's veryfast (subme 2), as
    OBS records; a file job keeps fast (subme 6); --preset has the last word."""
    monkeypatch.setattr(stream.session, "open_engine", lambda opts: IdentityEngine())
    runs = {"live": ["--realtime"], "file": [], "asked": ["--realtime", "--preset", "fast"]}
    subme = {}
    for name, flags in runs.items():
        out = tmp_path / f"{name}.mp4"
        assert main([str(clip20.path), str(out), "--sigma", "5", "--quiet", *flags]) == 0
        assert len(read(out)["frames"]) >= 1
        subme[name] = _x264_subme(out)
    assert subme == {"live": 2, "file": 6, "asked": 6}

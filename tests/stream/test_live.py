"""Live path pieces without a camera: drop-oldest queue, pacing, stats, camera source (fake
capture), and a file played as a live source through the whole pipeline."""
from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engines.base import parse_size
from stream.camera import CameraError, CameraSource, is_camera_spec, parse_camera_spec
from stream.frame import Frame
from stream.live import (
    LiveControls,
    LiveStats,
    RealtimeSource,
    paced,
    percentile,
)
from stream.pipeline import DropOldestQueue


def _frame(i: int, pts: int | None = None, tb: Fraction | None = None) -> Frame:
    """A flat colour frame (its channels apart: a grey one is told more, ``stream.grey``)."""
    image = np.full((4, 6, 3), i, np.uint8) + np.array([0, 3, 6], np.uint8)
    return Frame(image=image, index=i, pts=pts, time_base=tb)


def test_drop_oldest_queue_keeps_newest_and_counts():
    q = DropOldestQueue(2)
    for i in range(5):
        q.put(_frame(i))
    assert q.dropped == 3
    assert [q.get_nowait().index for _ in range(2)] == [3, 4]


def test_drop_oldest_queue_never_drops_markers():
    eos = object()
    q = DropOldestQueue(1)
    q.put(eos)
    q.put(_frame(0))  # only a marker waits: nothing droppable, the frame is added anyway
    assert q.dropped == 0
    assert q.get_nowait() is eos
    q.put(eos)  # the waiting frame 0 makes room for the marker
    assert q.dropped == 1 and q.get_nowait() is eos and q.empty()


def test_paced_releases_at_timestamps_and_stamps_capture():
    tb = Fraction(1, 1000)
    frames = [_frame(i, pts=40 * i, tb=tb) for i in range(6)]  # 25 fps
    t0 = time.perf_counter()
    out = list(paced(frames))
    assert [f.index for f in out] == list(range(6))
    # Each frame is released no earlier than its timestamp says (lower bounds only).
    for f in out:
        assert f.captured - t0 >= f.index * 0.040 - 0.002
    assert out[-1].captured - out[0].captured >= 0.2 - 0.002


def test_paced_without_timestamps_uses_fps_and_stops_on_stop():
    controls = LiveControls()
    frames = (_frame(i) for i in range(1000))
    got = []
    for f in paced(frames, fps=200.0, controls=controls):
        got.append(f.index)
        if len(got) == 3:
            controls.stop.set()
    assert got == [0, 1, 2]


def test_paced_pause_holds_frames_until_resume():
    controls = LiveControls()
    controls.pause()
    out: list[int] = []
    t = threading.Thread(target=lambda: out.extend(
        f.index for f in paced([_frame(0), _frame(1)], fps=100.0, controls=controls)))
    t.start()
    time.sleep(0.2)
    assert out == []  # nothing released while paused
    controls.resume()
    t.join(2)
    assert out == [0, 1]


def test_percentile_and_stats_summary():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    stats = LiveStats()
    now = 100.0
    for ms in (10, 20, 30, 40, 50):
        f = _frame(0)
        f.captured = now - ms / 1000
        stats.add_output(f, now=now)
    s = stats.summary()
    assert s["frames"] == 5
    assert s["latency_ms"]["p50"] == pytest.approx(30.0)
    assert s["latency_ms"]["max"] == pytest.approx(50.0)
    assert stats.last_latency == pytest.approx(0.050)


@pytest.mark.parametrize("spec,expected", [("webcam", 0), ("0", 0), ("3", 3), ("webcam1", 1),
                                           ("/dev/video2", "/dev/video2")])
def test_camera_specs(spec, expected):
    assert is_camera_spec(spec)
    assert parse_camera_spec(spec) == expected


def test_not_camera_specs_and_sizes():
    assert not any(map(is_camera_spec, ["in.mp4", "udp://x:1", "-", "webcams", "/dev/null"]))
    assert parse_size("1280x720") == (1280, 720)
    with pytest.raises(ValueError, match="expected a size"):
        parse_size("1280")


class FakeCapture:
    """The few cv2.VideoCapture calls CameraSource makes; BGR frames valued by index."""

    def __init__(self, frames: int, size=(64, 48)):
        self.left = frames
        self.size = size
        self.props: dict[int, float] = {}
        self.released = False

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FPS: 30.0,
                cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter_fourcc(*"MJPG"))}.get(prop, 0.0)

    def grab(self):
        self.left -= 1
        return self.left >= 0

    def retrieve(self):
        img = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        img[..., 0] = 255  # blue in BGR
        return True, img

    def read(self):
        return self.grab(), self.retrieve()[1]

    def release(self):
        self.released = True


def test_camera_source_reports_granted_mode_and_converts_to_rgb():
    import cv2

    caps = [FakeCapture(4, size=(64, 48))]
    messages: list[str] = []
    src = CameraSource("webcam", size=(1280, 720), fps=30, report=messages.append,
                       capture_factory=lambda dev: caps.pop(0) if caps else None, retry_s=0.01)
    assert (src.info.width, src.info.height) == (64, 48)
    assert messages[0] == "camera 0: 64x48 at 30 fps, MJPG (asked 1280x720 at 30 fps)"
    cap = src._cap
    assert cap.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")  # big size asked
    assert cap.props[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    threading.Timer(0.2, src.close).start()  # the camera "vanishes" after 3 frames; then stop
    frames = list(src.frames())
    assert len(frames) == 3  # one read went to probing the mode
    assert frames[0].image.shape == (48, 64, 3)
    assert frames[0].image[0, 0].tolist() == [0, 0, 255]  # BGR blue -> RGB blue
    assert frames[0].time_base == Fraction(1, 1000)
    assert any("lost" in m for m in messages)


def test_camera_source_reconnects_with_a_new_sequence():
    caps: list = [FakeCapture(3), None, None, FakeCapture(3)]
    messages: list[str] = []
    src = CameraSource(0, report=messages.append, retry_s=0.01,
                       capture_factory=lambda dev: caps.pop(0) if caps else None)
    frames = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 4:
            src.close()
    assert [f.sequence for f in frames] == [0, 0, 1, 1]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert src.reconnects == 1
    assert messages[1] == "camera 0 lost; retrying every 0.01 s (Ctrl-C quits)"
    assert messages[2].startswith("camera 0 back: 64x48")


def test_no_camera_is_a_user_error():
    if Path("/dev/video97").exists():
        pytest.skip("/dev/video97 exists here")
    with pytest.raises(CameraError, match=r"^no camera at /dev/video97"):
        CameraSource("/dev/video97", report=lambda m: None)


def test_live_processor_follows_strength_and_temporal_keys(monkeypatch):
    from conftest import IdentityEngine

    import stream.processor
    from stream.errors import UserError
    from stream.livecli import LiveProcessor
    from stream.processor import Processor

    engine = IdentityEngine()
    controls = LiveControls(strength=1.0)
    live = LiveProcessor(Processor(engine, sigma=10.0), controls, "off")
    live(_frame(0))
    controls.strength = 0.5
    out = live(_frame(1))
    assert engine.calls == [10.0, 5.0] and out.sigma == 5.0

    seen: list[int] = []

    def stage():
        def apply(frame):
            seen.append(frame.index)
            return frame
        return apply

    monkeypatch.setattr(stream.processor, "load_temporal", lambda mode, device=None: stage)
    controls.temporal = True
    live(_frame(2))
    live(_frame(3))
    assert seen == [2, 3]
    controls.temporal = False
    live(_frame(4))
    assert seen == [2, 3]

    def unavailable(mode, device=None):
        raise UserError("--temporal auto is not available in this version")

    monkeypatch.setattr(stream.processor, "load_temporal", unavailable)
    controls.temporal = True
    live(_frame(5))
    assert controls.temporal is False and not live.temporal_available  # the HUD shows off


def test_live_urls_are_not_paced_again(monkeypatch):
    import stream.live
    from stream.base import Source
    from stream.live import is_live_url

    assert all(map(is_live_url, ["rtsp://cam/1", "udp://@:5000", "SRT://h:1", "rtmp://x/y"]))
    assert not any(map(is_live_url, ["clip.mp4", "https://example.com/a.mp4", "-"]))

    class Listed(Source):
        def frames(self):
            yield from (_frame(i, pts=1000 * i, tb=Fraction(1, 1000)) for i in range(3))

    def no_pacing(*args, **kwargs):
        raise AssertionError("a live URL was paced again")

    monkeypatch.setattr(stream.live, "paced", no_pacing)
    t0 = time.perf_counter()
    got = list(RealtimeSource(Listed("x"), pace=False).frames())  # 1 s apart if paced
    assert [f.index for f in got] == [0, 1, 2]
    # stamped when received, in order (the pacing would stamp each frame's due time)
    assert t0 <= got[0].captured <= got[1].captured <= got[2].captured

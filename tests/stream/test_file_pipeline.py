"""Pipeline and processor units: errors stop every stage once, queues, sigma, temporal hook."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from stream.frame import Frame
from stream.pipeline import FrameQueue, Pipeline
from stream.processor import AutoSigma, Processor, load_temporal


class ListSource:
    live = False

    def __init__(self, n: int, fail_at: int | None = None, shape=(8, 8, 3)) -> None:
        self.n, self.fail_at, self.shape = n, fail_at, shape

    def frames(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise RuntimeError("source broke")
            yield Frame(image=np.full(self.shape, i % 256, np.uint8), index=i)


class ListSink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[Frame] = []
        self.closed = 0
        self.fail_at = fail_at

    def write(self, frame: Frame) -> None:
        if len(self.frames) == self.fail_at:
            raise RuntimeError("sink broke")
        self.frames.append(frame)

    def close(self) -> None:
        self.closed += 1


def test_all_frames_in_order_with_bounded_queues():
    sink = ListSink()
    p = Pipeline(ListSource(200), lambda f: f, [sink], queue_size=2)
    res = p.run()
    assert [f.index for f in sink.frames] == list(range(200))
    assert res.frames == 200 and sink.closed == 1 and res.dropped == 0
    assert p.timings["decode"].count == 200 and p.timings["process"].count == 200


def test_callers_stop_event_stays_clear_until_the_sinks_drained():
    """At the end of the source the caller's event (the live controls, which also close the
    preview window) must not be set while the last frames are still on their way out."""
    stop = threading.Event()
    seen: list[tuple[int, bool]] = []

    class SlowSink(ListSink):
        def write(self, frame: Frame) -> None:
            time.sleep(0.01)
            seen.append((frame.index, stop.is_set()))

    p = Pipeline(ListSource(20), lambda f: f, [SlowSink()], queue_size=4, stop_event=stop)
    assert p.run().frames == 20
    assert seen == [(i, False) for i in range(20)]


@pytest.mark.parametrize("where", ["source", "process", "sink"])
def test_first_error_stops_everything_and_is_raised_once(where):
    sink = ListSink(fail_at=5 if where == "sink" else None)

    def process(f: Frame) -> Frame:
        if where == "process" and f.index == 7:
            raise ValueError("process broke")
        return f

    p = Pipeline(ListSource(10_000, fail_at=3 if where == "source" else None), process, [sink])
    start = time.monotonic()
    with pytest.raises((RuntimeError, ValueError), match="broke"):
        p.run()
    assert time.monotonic() - start < 10  # promptly, not after the 10000 frames
    assert sink.closed == 1
    assert len(sink.frames) <= 10
    assert not [t for t in threading.enumerate() if t.name.startswith("stream-")]


def test_several_sinks_and_main_thread_sinks():
    a, b = ListSink(), ListSink()
    b.main_thread = True
    threads: list[str] = []
    orig = b.write
    b.write = lambda f: (threads.append(threading.current_thread().name), orig(f))[1]
    Pipeline(ListSource(5), lambda f: f, [a, b]).run()
    assert len(a.frames) == len(b.frames) == 5
    assert set(threads) == {threading.main_thread().name}


def test_drop_oldest_queue_counts_and_keeps_newest():
    stop = threading.Event()
    q = FrameQueue(3, stop, "drop-oldest")
    for i in range(10):
        assert q.put(i)
    assert q.dropped == 7
    assert [q.get() for _ in range(3)] == [7, 8, 9]


def test_blocking_queue_put_gives_up_on_stop():
    stop = threading.Event()
    q = FrameQueue(1, stop, "block")
    assert q.put(1)
    threading.Timer(0.2, stop.set).start()
    assert q.put(2) is False


def test_live_source_gets_drop_oldest_policy():
    src = ListSource(3)
    src.live = True
    assert Pipeline(src, lambda f: f, []).in_q.policy == "drop-oldest"


class FakeEngine:
    name = model = "fake"

    def __init__(self, temporal: bool = False) -> None:
        self.temporal = temporal
        self.sigmas: list[float] = []
        self.prevs: list[object] = []

    def infer(self, frames, sigma, prev=None):
        self.sigmas.append(float(sigma[0]))
        self.prevs.append(None if prev is None else int(prev[0, 0, 0, 0]))
        return frames // 2


def frame(i: int, seq: int = 0, value: int | None = None) -> Frame:
    v = i * 10 if value is None else value
    return Frame(image=np.full((4, 4, 3), v, np.uint8), index=i, sequence=seq)


def tinted(f: Frame) -> Frame:
    """``f`` in colour (its channels 0, 3 and 6 levels apart): a grey frame's network is told
    ``stream.grey.GAIN`` times the level."""
    f.image = f.image + np.array([0, 3, 6], np.uint8)
    return f


def test_fixed_sigma_and_strength():
    eng = FakeEngine()
    p = Processor(eng, sigma=20, strength=0.5)
    out = p(tinted(frame(1)))
    assert eng.sigmas == [10.0] and out.sigma == 10.0
    assert np.array_equal(out.original, tinted(frame(1)).image) and out.image[0, 0, 0] == 5
    p.strength = 2.0  # changeable between frames
    p(tinted(frame(2)))
    assert eng.sigmas[-1] == 40.0
    p(frame(3))  # grey: the level it is given stays 40, the network is told sqrt(3) times it
    assert eng.sigmas[-1] == pytest.approx(40.0 * 3 ** 0.5) and p.grey_frames == 1


def test_auto_sigma_reestimated_periodically_and_smoothed():
    calls: list[int] = []

    def estimator(img):
        calls.append(int(img[0, 0, 0]))
        return 10.0 if len(calls) == 1 else 20.0

    auto = AutoSigma(estimator, every=3, smoothing=0.5)
    values = [auto(np.full((2, 2, 3), i, np.uint8)) for i in range(7)]
    assert calls == [0, 3, 6]
    assert values == [10, 10, 10, 15, 15, 15, 17.5]
    auto.reset()
    assert auto(np.zeros((2, 2, 3), np.uint8)) == 20.0


def test_temporal_hook_gets_a_fresh_stage_per_sequence():
    made: list[list[int]] = []

    def factory():
        seen: list[int] = []
        made.append(seen)

        def stage(f: Frame) -> Frame:
            assert f.original is not None and f.sigma == 5.0
            seen.append(f.index)
            return f
        return stage

    p = Processor(FakeEngine(), sigma=5, temporal=factory)
    for f in [frame(0), frame(1), frame(2, seq=1), frame(3, seq=1), frame(4, seq=2)]:
        p(f)
    assert made == [[0, 1], [2, 3], [4]]


def test_temporal_model_gets_previous_output_within_a_sequence():
    eng = FakeEngine(temporal=True)
    p = Processor(eng, sigma=5)
    for f in [frame(0, value=100), frame(1, value=100), frame(2, seq=1, value=100)]:
        p(f)
    assert eng.prevs == [None, 50, None]


def test_load_temporal_modes():
    assert load_temporal("off") is None
    from stream.errors import UserError

    with pytest.raises(UserError, match="--temporal"):
        load_temporal("sideways")


def test_auto_sigma_survives_a_useless_estimate():
    values = iter([float("nan"), 12.0, float("inf"), -3.0])
    auto = AutoSigma(lambda img: next(values), every=1, smoothing=1.0)
    img = np.zeros((2, 2, 3), np.uint8)
    assert [auto(img) for _ in range(4)] == [0.0, 12.0, 12.0, 0.0]

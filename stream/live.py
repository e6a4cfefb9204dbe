"""What makes a path live: real-time pacing, the newest-frame queue, shared controls, stats.

A live source (camera, or a file played at its own pace with ``--realtime``) must never be
slowed by the processor behind it: when processing lags, the *oldest* waiting frame is dropped
and counted, so what is shown is always the newest picture. Every frame carries the moment it
was captured, and the sink that shows or sends it records ``perf_counter() - captured`` as its
end-to-end latency.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import Source
from .frame import Frame


class LiveControls:
    """State shared by the window (which changes it) and the stages (which read it).

    Plain attributes for values read once per frame (a torn read costs one frame at the old
    strength); events for what threads wait on, so a paused pipeline sleeps instead of polling.
    """

    def __init__(self, strength: float = 1.0, temporal: bool = False) -> None:
        self.stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.strength = strength
        self.temporal = temporal

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def toggle_pause(self) -> bool:
        """Flip pause; returns the new paused state."""
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    def wait_running(self, poll_s: float = 0.5) -> bool:
        """Block while paused; False when stopped. Wakes every ``poll_s`` to notice a stop."""
        while not self._running.wait(poll_s):
            if self.stop.is_set():
                return False
        return not self.stop.is_set()


def paced(
    frames: Iterable[Frame],
    *,
    fps: float = 25.0,
    speed: float = 1.0,
    controls: LiveControls | None = None,
    clock: Callable[[], float] = time.perf_counter,
    on_wait: Callable[[float], None] | None = None,
) -> Iterator[Frame]:
    """Release frames at the pace their timestamps say, stamping ``captured`` with the time
    each was due (its release time, unless it decoded late).

    This is how a file or URL becomes a live source (``--realtime``): each frame waits until
    its presentation time has come, then enters the pipeline as a camera frame would. Frames
    without timestamps are spaced ``1/fps`` apart. Pausing (``controls``) stops the clock.
    When decoding falls more than a second behind, the clock restarts from the late frame
    rather than rushing to catch up. ``on_wait`` is told how long each frame was held back.
    """
    stop = controls.stop if controls is not None else threading.Event()
    start: float | None = None
    first: float = 0.0
    for frame in frames:
        if on_wait is not None:
            waited_from = clock()
        t = frame.time if frame.time is not None else frame.index / fps
        now = clock()
        if start is None:
            start, first = now, t
        due = start + (t - first) / speed
        if due - now < -1.0:
            start, first, due = now, t, now
        if due > now and stop.wait(due - now):
            return
        if controls is not None and controls.paused:
            paused_at = clock()
            if not controls.wait_running():
                return
            start += clock() - paused_at
            due = start + (t - first) / speed
        if stop.is_set():
            return
        # A frame that decoded late counts from when it was due, as a camera's would.
        released = clock()
        frame.captured = min(released, due)
        if on_wait is not None:
            on_wait(released - waited_from)
        yield frame


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class RateMeter:
    """Events per second over the last ``window_s`` seconds (the HUD's fps)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass
class LiveStats:
    """End-to-end latencies and the output rate, thread-safe, summarised at exit (``--stats``;
    the per-stage times are the pipeline's own).

    Latencies are kept in a bounded deque (the last 100 000) so an all-day camera session
    does not grow memory; ``frames`` and ``dropped`` count everything.
    """

    frames: int = 0
    dropped: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    fps: RateMeter = field(default_factory=RateMeter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _first_output: float = field(default=0.0, repr=False)
    _last_output: float = field(default=0.0, repr=False)

    def add_output(self, frame: Frame, now: float | None = None) -> float:
        """Record one frame delivered to the outside world; returns its latency in seconds."""
        now = time.perf_counter() if now is None else now
        latency = now - frame.captured
        with self._lock:
            if not self.frames:
                self._first_output = now
            self._last_output = now
            self.frames += 1
            self.latencies.append(latency)
            self.fps.tick(now)
        return latency

    @property
    def last_latency(self) -> float:
        with self._lock:
            return self.latencies[-1] if self.latencies else math.nan

    def summary(self) -> dict[str, Any]:
        """Numbers for ``--stats`` (milliseconds), also handy as JSON."""
        with self._lock:
            lat = [x * 1000 for x in self.latencies]
            span = self._last_output - self._first_output
            fps = (self.frames - 1) / span if self.frames > 1 and span > 0 else 0.0
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": fps,  # output rate from the first frame out to the last
            "latency_ms": {f"p{q}": percentile(lat, q) for q in (50, 90, 95, 99)}
            | {"max": max(lat) if lat else math.nan},
        }


# Inputs that arrive at their own pace already: pacing them again would only add delay.
LIVE_PROTOCOLS = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp")


def is_live_url(spec: str) -> bool:
    return spec.split("://", 1)[0].lower() in LIVE_PROTOCOLS if "://" in spec else False


class RealtimeSource(Source):
    """Any source played as a live one (``--realtime``): paced to its timestamps (unless
    ``pace`` is False: a network stream that is live already), stamped with the time each
    frame was due, and given the drop-oldest queue policy like a camera."""

    live = True

    def __init__(self, inner: Source, controls: LiveControls | None = None,
                 speed: float = 1.0, pace: bool = True) -> None:
        super().__init__(inner.description)
        self.inner = inner
        self.controls = controls
        self.speed = speed
        self.pace = pace
        self.is_video = inner.is_video
        self.info = inner.info
        self.warnings = inner.warnings
        self.waited = 0.0  # seconds frames were held back to keep the pace

    def _waited(self, seconds: float) -> None:
        self.waited += seconds

    def frames(self) -> Iterator[Frame]:
        fps = float(self.info.rate) if self.info.rate else 25.0
        if self.pace:
            yield from paced(self.inner.frames(), fps=fps, speed=self.speed,
                             controls=self.controls, on_wait=self._waited)
        else:
            for frame in self.inner.frames():
                if self.controls is not None and not self.controls.wait_running():
                    return
                frame.captured = time.perf_counter()  # received and decoded just now
                yield frame
        self.finished = self.inner.finished

    def close(self) -> None:
        self.inner.close()


def format_stats(timings: dict[str, Any], stats: LiveStats, dropped: int,
                 source: Any = None, tier: str | None = None) -> str:
    """The ``--stats`` block: mean ms per pipeline stage, then end-to-end latency (and, for
    ``--model auto``, ``tier``: which model tier ran last and why, and its switches).

    The source's time counts decoding only: a ``--realtime`` source's pacing wait is shown
    on its own line, and a camera's includes waiting for the next exposure.
    """
    s = stats.summary()
    lines = [(f"stats: {s['frames']} frames shown/sent, {dropped} dropped, "
              f"{s['fps']:.1f} fps out")]
    if tier:
        lines.append(tier)
    waited = getattr(source, "waited", 0.0)
    for name, t in timings.items():
        if not getattr(t, "count", 0):
            continue
        ms = t.ms
        if name == "decode" and waited:
            ms = max(0.0, (t.seconds - waited) * 1000 / t.count)
            lines.append(f"  {'pacing wait':<28} {waited * 1000 / t.count:7.1f} ms/frame")
        elif name == "decode" and getattr(source, "device", None) is not None:
            name = "camera read (incl. wait)"
        lines.append(f"  {name:<28} {ms:7.1f} ms/frame  ({t.count} frames)")
    lat = s["latency_ms"]
    lines.append("  end-to-end latency  p50 {p50:.1f} ms  p90 {p90:.1f}  p95 {p95:.1f}  "
                 "p99 {p99:.1f}  max {max:.1f}".format(**lat))
    return "\n".join(lines)

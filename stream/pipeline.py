"""The frame path: reader thread -> bounded queue -> processor -> bounded queue -> writer thread.

One stop event, a timeout on every put/get, an end-of-stream marker, and the first exception
from any stage re-raised (once) to the caller.  The processor runs on the calling thread so
Ctrl-C (KeyboardInterrupt) lands there; the writer then drains what was already processed and
the sinks are closed, leaving playable files.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .frame import Frame

log = logging.getLogger(__name__)

_EOS = object()  # end-of-stream marker
_TICK = 0.1  # seconds between stop-event checks while blocked on a queue


@dataclass
class StageTime:
    """Busy time of one stage (waiting on queues excluded)."""

    seconds: float = 0.0
    count: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.seconds += seconds
        self.count += count

    @property
    def ms(self) -> float:
        return 1000.0 * self.seconds / self.count if self.count else 0.0


class DropOldestQueue(queue.Queue):
    """A bounded ``queue.Queue`` whose ``put`` never blocks: when full it drops the oldest.

    Only items for which ``droppable(item)`` is true are dropped (by default :class:`Frame`
    objects), so an end-of-stream marker or an error always gets through. ``dropped`` counts
    the frames thrown away.
    """

    def __init__(
        self, maxsize: int = 1, droppable: Callable[[Any], bool] | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"expected maxsize >= 1, got {maxsize}")
        super().__init__(maxsize)
        self.dropped = 0
        self._droppable = droppable or (lambda item: isinstance(item, Frame))

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.not_full:
            while self._qsize() >= self.maxsize:
                victim = next((x for x in self.queue if self._droppable(x)), None)
                if victim is None:  # only markers waiting: keep them all
                    break
                self.queue.remove(victim)
                self.dropped += 1
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


class FrameQueue:
    """A bounded queue with a policy for when it is full.

    ``block`` (files): the producer waits, nothing is lost.  ``drop-oldest`` (live sources):
    the oldest waiting frame is discarded and counted in ``dropped``, so the consumer always
    gets the newest frames and latency stays bounded; the end-of-stream marker waits for room
    instead, so the last frame is never dropped.
    """

    def __init__(self, maxsize: int, stop: threading.Event, policy: str = "block") -> None:
        if policy not in ("block", "drop-oldest"):
            raise ValueError(f"expected queue policy 'block' or 'drop-oldest', got {policy!r}")
        self._q: queue.Queue[Any] = (
            DropOldestQueue(maxsize, droppable=lambda item: item is not _EOS)
            if policy == "drop-oldest" else queue.Queue(maxsize=maxsize))
        self._stop = stop
        self.policy = policy

    @property
    def dropped(self) -> int:
        return self._q.dropped if isinstance(self._q, DropOldestQueue) else 0

    def put(self, item: Any) -> bool:
        """Put ``item``; False if the stop event was set first."""
        if isinstance(self._q, DropOldestQueue) and item is not _EOS:
            self._q.put(item)  # never blocks
            return True
        while not self._stop.is_set():  # the end marker waits its turn: the last frame counts
            try:
                queue.Queue.put(self._q, item, timeout=_TICK)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        """The next item, or raises queue.Empty after one tick (callers re-check the stop)."""
        return self._q.get(timeout=_TICK)

    def qsize(self) -> int:
        return self._q.qsize()


@dataclass
class PipelineResult:
    frames: int = 0  # frames written
    seconds: float = 0.0
    interrupted: bool = False
    dropped: int = 0
    timings: dict[str, StageTime] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Pipeline:
    """Join a source, a processing callable and sinks.

    ``source`` needs ``frames()`` (an iterator of Frame) and a ``live`` flag; each sink needs
    ``write(frame)`` and ``close()``; sinks with ``main_thread = True`` (GUI windows) are
    written on the calling thread instead of the writer thread.  ``timings`` holds per-stage
    busy time: ``decode``, ``process`` and one ``write:<sink>`` per sink (``encode`` is their sum).
    """

    def __init__(self, source: Any, process: Callable[[Frame], Frame | list[Frame]], sinks: Sequence[Any],
                 *, queue_size: int = 4, policy: str | None = None,
                 on_frame: Callable[[Frame], None] | None = None,
                 stop_event: threading.Event | None = None,
                 max_frames: int | None = None) -> None:
        self.source = source
        self.max_frames = max_frames  # --frames N: the reader stops after N (source unfinished)
        self.process = process
        self.sinks = list(sinks)
        self.on_frame = on_frame
        # A caller's event (e.g. the live controls) lets a preview's quit key stop every stage
        # and the pipeline's end wake a source that waits on it (camera reconnect, pacing).
        self.stop_event = stop_event or threading.Event()
        policy = policy or ("drop-oldest" if getattr(source, "live", False) else "block")
        self.in_q = FrameQueue(queue_size, self.stop_event, policy)
        self.out_q = FrameQueue(queue_size, self.stop_event, "block")
        self.timings: dict[str, StageTime] = {"decode": StageTime(), "process": StageTime()}
        for i, sink in enumerate(self.sinks):
            self.timings[self._sink_key(i, sink)] = StageTime()
        self.written = 0
        self.reader_stuck = False
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()

    @staticmethod
    def _sink_key(i: int, sink: Any) -> str:
        return f"write:{i}:{type(sink).__name__}"

    @property
    def dropped(self) -> int:
        return self.in_q.dropped

    def stop(self) -> None:
        """Ask every stage to finish early (thread-safe)."""
        self.stop_event.set()

    def _fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self.stop_event.set()

    # -- threads -------------------------------------------------------------------------
    def _read(self) -> None:
        timer = self.timings["decode"]
        try:
            it = iter(self.source.frames())
            count = 0
            while not self.stop_event.is_set():
                if self.max_frames is not None and count >= self.max_frames:
                    break
                count += 1
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                timer.add(time.perf_counter() - t0)
                if not self.in_q.put(frame):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            self._fail(exc)
        finally:
            self.in_q.put(_EOS)

    def _write_one(self, i: int, sink: Any, frame: Frame) -> None:
        t0 = time.perf_counter()
        sink.write(frame)
        self.timings[self._sink_key(i, sink)].add(time.perf_counter() - t0)

    def _write(self) -> None:
        threaded = [(i, s) for i, s in enumerate(self.sinks)
                    if not getattr(s, "main_thread", False)]
        try:
            while True:
                try:
                    item = self.out_q.get()
                except queue.Empty:
                    if self.stop_event.is_set() and self._error is not None:
                        break  # a stage failed: nobody will send EOS
                    continue
                if item is _EOS:
                    break
                for i, sink in threaded:
                    self._write_one(i, sink, item)
                self.written += 1
                if self.on_frame is not None:
                    self.on_frame(item)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)

    # -- main ----------------------------------------------------------------------------
    def run(self) -> PipelineResult:
        """Run to the end of the source (or a stop); re-raises the first stage error."""
        start = time.perf_counter()
        reader = threading.Thread(target=self._read, name="stream-reader", daemon=True)
        writer = threading.Thread(target=self._write, name="stream-writer", daemon=True)
        self._main_sinks = [(i, s) for i, s in enumerate(self.sinks)
                            if getattr(s, "main_thread", False)]
        interrupted = False
        at_end = False  # the source ran out: nothing to stop, the writer just drains
        reader.start()
        writer.start()
        try:
            while True:
                try:
                    item = self.in_q.get()
                except queue.Empty:
                    if self.stop_event.is_set() or not writer.is_alive():
                        break
                    continue
                if item is _EOS or self.stop_event.is_set():
                    at_end = item is _EOS and not self.stop_event.is_set()
                    break
                t0 = time.perf_counter()
                out = self.process(item)
                self.timings["process"].add(time.perf_counter() - t0)
                if not self._emit(out if isinstance(out, list) else [out]):
                    break
        except KeyboardInterrupt:
            interrupted = True
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            # a processor that looks ahead (``stream.lookahead``) still holds frames it read:
            # they are denoised and written, at the end and after a Ctrl-C alike
            if self._error is None and self._drain():
                interrupted = True
            # Stop the reader (unless the source ended), let the writer drain what is already
            # processed, then close.  At the end the event stays clear: a caller's event (the
            # live controls) would otherwise close a preview before it drew the last frames.
            if not at_end:
                self.stop_event.set()
            self._send_eos(writer)
            try:
                writer.join()
            except KeyboardInterrupt:  # a second Ctrl-C while finishing: still finalise
                interrupted = True
                writer.join()
            self._drain_input()
            reader.join(timeout=5)
            # A reader stuck in a network read may outlive us (daemon thread); its source
            # must then not be closed under it.
            self.reader_stuck = reader.is_alive()
            self._close_sinks()
        if self._error is not None:
            raise self._error
        return PipelineResult(frames=self.written, seconds=time.perf_counter() - start,
                              interrupted=interrupted, dropped=self.dropped,
                              timings=dict(self.timings))

    def _emit(self, frames: list[Frame]) -> bool:
        """Hand processed frames to the sinks; False once the pipeline is stopping."""
        for frame in frames:
            for i, sink in self._main_sinks:
                self._write_one(i, sink, frame)
            if not self.out_q.put(frame):
                return False
        return True

    def _drain(self) -> bool:
        """Write the frames a look-ahead processor still holds (``drain()``: one at a time, so
        a second Ctrl-C keeps those already done); True if a Ctrl-C stopped it."""
        drain = getattr(self.process, "drain", None)
        if drain is None:
            return False
        timer = self.timings["process"]
        try:
            frames = iter(drain())
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                timer.add(time.perf_counter() - t0, count=0)  # counted when it was read
                if frame is None or not self._emit([frame]):
                    return False
        except KeyboardInterrupt:
            return True
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            return False

    def _send_eos(self, writer: threading.Thread) -> None:
        while writer.is_alive():
            try:
                self.out_q._q.put(_EOS, timeout=_TICK)
                return
            except queue.Full:
                continue

    def _drain_input(self) -> None:
        while True:
            try:
                self.in_q._q.get_nowait()
            except queue.Empty:
                return

    def _close_sinks(self) -> None:
        # After a failure a file sink throws its partial output away (``discard``: the file
        # it would have replaced stays as it was); after the end or a stop it finalises.
        failed = self._error is not None
        for sink in self.sinks:
            try:
                discard = getattr(sink, "discard", None) if failed else None
                (discard or sink.close)()
            except BaseException as exc:  # noqa: BLE001
                self._fail(exc)

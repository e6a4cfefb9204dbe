"""The live half of ``python -m stream``: cameras, ``--realtime`` files, the preview window,
the virtual camera, ``--stats``.

``python -m stream webcam`` (no output) opens the preview window; ``webcam vcam`` feeds a
virtual camera; ``clip.mp4 --realtime udp://...`` plays a file as a live source. A run is live
when the input is a camera, ``--realtime`` is given, or an output is ``preview``/``vcam``:
then the source queue drops the oldest frame instead of waiting, frames carry their capture
time, and the preview's keys reach the processor (strength, temporal, pause).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.base import parse_size

from .base import Source
from .errors import EXIT_INTERRUPTED, UserError
from .frame import Frame
from .openers import is_live_sink, is_preview
from .options import DenoiseOptions, RunOptions
from .session import smoothing_device
from .tiers import TierPolicy, ladder

log = logging.getLogger(__name__)

def _size_arg(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_live_options(p: argparse.ArgumentParser) -> None:
    """The live options of ``python -m stream`` (added by ``cli.build_parser``)."""
    from .views import VIEWS

    g = p.add_argument_group("live (camera, preview window, virtual camera)",
                             "Inputs: webcam, 0, /dev/video0. Outputs: preview (the default "
                             "when none is given), vcam or vcam:/dev/videoN.")
    g.add_argument("--size", type=_size_arg, default=None, metavar="WxH",
                   help="camera picture size to ask for; the granted one is printed "
                        "(--fps asks for a camera frame rate)")
    g.add_argument("--realtime", action="store_true",
                   help="play a file or URL at its own pace as a live source (frames are "
                        "dropped, oldest first, when processing lags)")
    g.add_argument("--preview", action="store_true",
                   help="also show the preview window next to the outputs named")
    g.add_argument("--view", choices=VIEWS, default="denoised",
                   help="preview view at start (keys switch it)")
    g.add_argument("--stats", action="store_true",
                   help="at exit, print ms per stage and end-to-end latency percentiles")


class LiveProcessor:
    """The file path's processor, following the live controls (strength, temporal) per frame.

    ``recurrent``: the engine runs a recurrent model, temporal by itself; ``t`` cannot switch
    it off (that would mean another engine), so the temporal control stays on.
    """

    def __init__(self, processor: Any, controls: Any, temporal_mode: str,
                 recurrent: bool = False, device: str | None = None,
                 tiers: TierSwitcher | None = None) -> None:
        self.processor = processor
        self.controls = controls
        self.device = device
        self.mode = temporal_mode if temporal_mode != "off" else "auto"
        self.recurrent = recurrent
        self.temporal_on = temporal_mode != "off" or recurrent
        self.temporal_available = True
        self.tiers = tiers  # --model auto: times each frame, may swap the processor between
        if recurrent:
            controls.temporal = True

    def swap(self, processor: Any, temporal_mode: str, recurrent: bool, device: str) -> None:
        """Run ``processor`` (a fresh one: a new sequence, so no state crosses) from the next
        frame, keeping the viewer's temporal choice."""
        self.processor, self.device, self.recurrent = processor, device, recurrent
        self.mode = temporal_mode if temporal_mode != "off" else "auto"
        self.temporal_available = True
        if recurrent:
            self.controls.temporal = self.temporal_on = True
        elif not self.controls.temporal:
            processor.temporal_factory = None
            self.temporal_on = False
        else:  # on, but this tier planned none: __call__ loads the smoothing
            self.temporal_on = processor.temporal_factory is not None

    def _switch_temporal(self, on: bool) -> None:
        from . import processor as processing

        try:
            factory = processing.load_temporal(self.mode, self.device) if on else None
        except UserError as exc:
            if self.temporal_available:
                log.warning("%s", exc)
            self.temporal_available = False
            self.controls.temporal = False
            return
        self.processor.temporal_factory = factory
        self.processor._sequence = None  # start a fresh sequence: no state crosses the switch
        self.temporal_on = on

    def __call__(self, frame: Frame) -> Frame:
        if self.controls.paused:  # hold the pipeline (a file job too) while the viewer pauses
            self.controls.wait_running()
        if self.tiers is not None:
            self.tiers.before_frame(self)  # between frames: a tier's engine that is ready
        self.processor.strength = self.controls.strength
        if self.controls.temporal != self.temporal_on:
            if self.recurrent:
                log.warning("temporal: the recurrent model %s stays on (t cannot switch it)",
                            self.processor.engine.model)
                self.controls.temporal = True
            else:
                self._switch_temporal(self.controls.temporal)
        if self.tiers is None:
            return self.processor(frame)
        start = time.perf_counter()
        out = self.processor(frame)
        self.tiers.after_frame(time.perf_counter() - start, frame.image)
        return out


class TierSwitcher:
    """``--model auto`` on a live source: the policy (stream/tiers.py) is told each frame's
    processing time and the drops; the engine it asks for is opened on a thread while the
    current one keeps running, and swapped in between frames (``LiveProcessor.swap``).

    ``asked``: the denoise options as asked (the temporal mode is planned again per tier);
    ``start``: the tier's model to begin with, which the session opened; ``dropped``: the
    drop-oldest queue's count; ``on_switch``: told after each swap (the window's HUD).
    """

    def __init__(self, session: Any, asked: DenoiseOptions, start: str, budget_s: float,
                 dropped: Callable[[], int],
                 on_switch: Callable[[TierSwitcher], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.session = session
        self.asked = asked
        self.start = start
        self.budget_s = budget_s
        self.dropped = dropped
        self.on_switch = on_switch
        self.clock = clock
        self.began = clock()
        # judging starts at once; the tiers to step to come when their costs are counted
        self.policy = TierPolicy([start], start, budget_s)
        self._ready: tuple[Any, ...] | None = None  # from the opener thread
        self._closed = False
        self._lock = threading.Lock()
        self.frames: dict[str, int] = {}  # frames processed per tier
        self.last: Any = None  # the last frame's picture: the next engine warms up on its like
        self._threads = [threading.Thread(target=self._load_ladder, daemon=True,
                                          name="tier-ladder")]
        self._threads[0].start()

    @property
    def note(self) -> str:
        """Which tier runs and why, for the HUD and --stats."""
        return self.policy.note

    def _load_ladder(self) -> None:
        try:
            tiers = ladder()
        except Exception as exc:  # noqa: BLE001 - auto degrades to a fixed model
            log.warning("--model auto: cannot list the model tiers (%s); %s stays", exc,
                        self.start)
            return
        names = [t.model for t in tiers]
        if self.start not in names:
            log.warning("--model auto: %s is not a released tier (%s); it stays", self.start,
                        ", ".join(names))
            return
        log.info("--model auto: tiers %s, starting at %s, budget %.1f ms/frame",
                 " > ".join(names), self.start, self.budget_s * 1000)
        self.policy.set_ladder(names, {t.model: t.macs for t in tiers})

    def after_frame(self, seconds: float, image: Any = None) -> None:
        self.last = image if image is not None else self.last
        self.frames[self.policy.current] = self.frames.get(self.policy.current, 0) + 1
        want = self.policy.observe(self.clock(), seconds, self.dropped())
        if want is not None:
            opener = threading.Thread(target=self._open, args=(want,), daemon=True,
                                      name=f"tier-open-{want}")
            self._threads.append(opener)
            opener.start()

    def _open(self, model: str) -> None:
        from .session import make_processor, open_engine, plan

        engine = None
        try:
            planned = plan(dataclasses.replace(self.asked, model=model))
            engine = open_engine(planned)
            processor = make_processor(planned, engine)
            if self.last is not None:  # its first run allocates: not on the frame thread
                engine.infer(np.zeros_like(self.last)[None], np.array([10.0], np.float32))
        except Exception as exc:  # noqa: BLE001 - told to the policy on the frame thread
            if engine is not None:
                engine.close()
            self._ready = ("failed", model, exc)
            return
        with self._lock:
            if self._closed:  # the run ended while it opened
                engine.close()
                return
            self._ready = ("ready", planned, engine, processor)

    def before_frame(self, live: LiveProcessor) -> None:
        """Between frames: swap in an engine that finished opening."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return
        if ready[0] == "failed":
            self.policy.unavailable(ready[1], str(ready[2]), self.clock())
            return
        _, planned, engine, processor = ready
        old = self.session.engine
        live.swap(processor, planned.temporal, bool(getattr(engine, "temporal", False)),
                  smoothing_device(engine))
        # the session closes the engine that runs at the end
        self.session.engine, self.session.processor = engine, processor
        self.session.denoise = planned
        old.close()
        self.policy.switched(self.clock())
        log.info("model tier now %s", self.policy.note)
        if self.on_switch is not None:
            self.on_switch(self)

    def summary(self) -> str:
        """The --stats lines: the tier that ran last and why, and each switch."""
        lines = [f"  model tier: {self.note}"]
        for s in self.policy.switches:
            ran = f", running {s.ran - self.began:.1f} s" if s.ran is not None else ""
            lines.append(f"  tier switch: {s.frm} -> {s.to} asked {s.at - self.began:.1f} s"
                         f"{ran}")
        if len(self.frames) > 1:
            lines.append("  frames per tier: " + ", ".join(f"{k} {n}"
                                                           for k, n in self.frames.items()))
        return "\n".join(lines)

    def close(self, timeout: float = 10.0) -> None:
        """After the run: an engine that opened but was never swapped in is closed; one
        still opening is closed when it arrives, which is waited for (up to ``timeout``: a
        thread left in torch or an exporter at interpreter exit can crash it)."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, None
        if ready is not None and ready[0] == "ready":
            ready[2].close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def run_live(options: RunOptions) -> int:
    from . import session as sessions
    from .live import LiveControls, LiveStats, RealtimeSource, format_stats, is_live_url
    from .preview import PreviewSink
    from .session import open_session

    live = options.live
    outputs = options.outputs or ("preview",)
    if live.preview and not any(is_preview(s) for s in outputs):
        outputs = (*outputs, "preview")
    asked_temporal = options.denoise.temporal
    controls = LiveControls(strength=options.denoise.strength, temporal=asked_temporal != "off")
    stats = LiveStats()

    def wrap(source: Source) -> Source:
        # A window or a virtual camera shows frames as they come: a file feeding only those
        # plays at its own pace, as --realtime would.
        if not source.live and (live.realtime or all(is_live_sink(s) for s in outputs)):
            return RealtimeSource(source, controls, pace=not is_live_url(options.input))
        return source

    session = open_session(options, outputs, controls=controls, wrap_source=wrap)
    source, engine = session.source, session.engine
    windows = [s for s in session.sinks if isinstance(s, PreviewSink)]
    for sink in windows:
        sink.window.model, sink.window.backend = engine.model, engine.name
        sink.window.stats = stats
    smoothing = session.denoise.temporal
    pipeline_box: list[Any] = []
    tiers = None
    # --model auto (the live default): a live source has a frame interval to keep up with; a
    # file job does not (every frame is processed), and a profile's tuned model stays.
    if source.live and options.denoise.model in (None, "auto") and options.denoise.profile is None:
        tiers = TierSwitcher(session, options.denoise,
                             start=sessions.default_model(options.denoise.device),
                             budget_s=frame_interval(source),
                             dropped=lambda: pipeline_box[0].dropped if pipeline_box else 0,
                             on_switch=lambda t: _show_tier(windows, t, session.engine))
        _show_tier(windows, tiers, engine)
    process = LiveProcessor(session.processor, controls, smoothing, session.recurrent,
                            device=smoothing_device(engine), tiers=tiers)

    def delivered(frame: Frame) -> None:
        stats.add_output(frame)
        stats.dropped = pipeline_box[0].dropped if pipeline_box else 0

    def runner(pipeline: Any) -> Any:
        pipeline_box.append(pipeline)
        # cli.main turns SIGTERM into Ctrl-C around all of this.
        return _run(pipeline, controls, bool(windows))

    try:
        result = session.run(process, runner=runner, queue_size=1 if source.live else 4,
                             on_frame=delivered)
    finally:
        if tiers is not None:
            tiers.close()
    engine, smoothing = session.engine, session.denoise.temporal  # the tier that ran last
    for warning in source.warnings:
        log.warning("%s: %s", options.input, warning)
    if live.stats:
        print(format_stats(result.timings, stats, result.dropped, source,
                           tier=tiers.summary() if tiers is not None else None), file=sys.stderr)
    if not options.quiet:
        lat = stats.summary()["latency_ms"]["p50"]
        state = "interrupted after" if result.interrupted else "done:"
        temporal_note = f", temporal {smoothing}" if smoothing != "off" else ""
        print(f"{state} {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), "
              f"{result.dropped} dropped, latency median {lat:.0f} ms, model {engine.model}, "
              f"backend {engine.name}{temporal_note} -> {', '.join(outputs)}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.interrupted else 0


def frame_interval(source: Source) -> float:
    """Seconds between the source's frames: the time a frame may take to keep up."""
    rate = getattr(source.info, "rate", None)
    if not rate or rate <= 0:
        log.info("--model auto: the source gives no frame rate; budgeting for 25 fps")
        return 1 / 25
    return float(1 / rate)


def _show_tier(windows: list[Any], tiers: TierSwitcher, engine: Any) -> None:
    for sink in windows:
        sink.window.model, sink.window.backend = engine.model, engine.name
        sink.window.tier = lambda: f"auto: {tiers.note}"  # read at each draw


def _run(pipeline: Any, controls: Any, window: bool) -> Any:
    """``pipeline.run()``, on a worker thread when the window needs the main one (macOS)."""
    from . import preview

    if not (window and preview.GUI_ON_MAIN_THREAD):
        return pipeline.run()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, on the main thread
            box["error"] = exc
        finally:
            controls.stop.set()

    worker = threading.Thread(target=work, name="stream-pipeline")
    worker.start()
    interrupted = False
    try:
        preview.serve_gui(until=controls.stop)
    except KeyboardInterrupt:
        interrupted = True
    controls.stop.set()
    while worker.is_alive():
        try:
            worker.join()
        except KeyboardInterrupt:  # a second Ctrl-C while finishing: still finalise
            interrupted = True
    if "error" in box:
        raise box["error"]
    result = box["result"]
    result.interrupted = result.interrupted or interrupted
    return result

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
import logging
import sys
import threading
import time
from typing import Any

from engines.base import parse_size

from .base import Source
from .errors import EXIT_INTERRUPTED, UserError
from .frame import Frame
from .openers import is_live_sink, is_preview
from .options import RunOptions
from .session import smoothing_device
from .tierswitch import TierSwitcher

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
        self._stepped_off = False  # the ladder, not the viewer, turned the smoothing off
        if recurrent:
            controls.temporal = True

    def swap(self, processor: Any, temporal_mode: str, recurrent: bool, device: str,
             stepped_off: bool = False) -> None:
        """Run ``processor`` (a fresh one: a new sequence, so no state crosses but the
        coarse-noise gate, ``Processor.carry_coarse``) from the next frame, keeping the
        viewer's temporal choice.  ``stepped_off``: the ladder's lowest rung, which runs no
        smoothing, so none is loaded back; the smoothing is back on when a rung above runs."""
        if stepped_off and self.controls.temporal:
            self.controls.temporal, self._stepped_off = False, True
        elif not stepped_off and self._stepped_off:
            self.controls.temporal, self._stepped_off = True, False
        carry = getattr(processor, "carry_coarse", None)
        if carry is not None and isinstance(self.processor, type(processor)):
            carry(self.processor)
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
    if tiers is not None:
        tiers.probe(process, source.info.height, source.info.width)

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
        split = getattr(session.processor, "coarse_frames", 0)  # the last tier's
        if split:
            temporal_note += f", coarse noise ({split} frames split)"
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

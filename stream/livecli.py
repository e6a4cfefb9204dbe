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
import os
import sys
import threading
from typing import Any

from .camera import is_camera_spec, parse_size
from .errors import UserError
from .frame import Frame

log = logging.getLogger(__name__)

PREVIEW_SPECS = ("preview", "window")


def _size_arg(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_live_options(p: argparse.ArgumentParser) -> None:
    """Registered in ``cli.OPTION_HOOKS``."""
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


def is_existing_path(spec: str) -> bool:
    """Reserved words (webcam, 0, preview, vcam...) yield to a file or folder of that name in
    the current folder; ``./name`` never is a reserved word."""
    return os.path.lexists(spec) and not spec.startswith("/dev/")


def is_camera_input(spec: str) -> bool:
    return is_camera_spec(spec) and not is_existing_path(spec)


def _is_preview(spec: str) -> bool:
    return spec in PREVIEW_SPECS and not is_existing_path(spec)


def _is_live_sink(spec: str) -> bool:
    from .vcam import is_vcam_spec

    return _is_preview(spec) or (is_vcam_spec(spec) and not is_existing_path(spec))


def wants_live(opts: argparse.Namespace) -> bool:
    return bool(is_camera_input(opts.input) or opts.realtime or opts.preview or opts.stats
                or not opts.outputs or any(_is_live_sink(s) for s in opts.outputs))


class PreviewSink:
    """The preview window as a pipeline output (the window draws on its own thread)."""

    main_thread = False

    def __init__(self, window: Any) -> None:
        self.window = window
        self.description = "preview window"
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        # Waiting for the picture to be on screen makes the latency end-to-end (and a window
        # that draws slowly hold back the path, whose live queue then drops the oldest frame).
        self.window.wait_drawn(self.window.show(frame))
        self.frames_written += 1

    def close(self) -> None:
        self.window.close()


class LiveProcessor:
    """The file path's processor, following the live controls (strength, temporal) per frame."""

    def __init__(self, processor: Any, controls: Any, temporal_mode: str,
                 recurrent: bool = False) -> None:
        self.processor = processor
        self.controls = controls
        self.mode = temporal_mode if temporal_mode != "off" else "auto"
        self.temporal_on = temporal_mode != "off" or recurrent
        self.temporal_available = True
        # A recurrent model is temporal by itself; switching it off would mean another engine.
        self.recurrent = recurrent

    def _switch_temporal(self, on: bool) -> None:
        from .processor import load_temporal

        try:
            factory = load_temporal(self.mode) if on else None
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
        self.processor.strength = self.controls.strength
        if self.controls.temporal != self.temporal_on:
            if self.recurrent:
                log.warning("temporal: the recurrent model %s stays on (t cannot switch it)",
                            getattr(self.processor.engine, "model", "?"))
                self.controls.temporal = True
            else:
                self._switch_temporal(self.controls.temporal)
        return self.processor(frame)


def open_camera_source(spec: str, opts: Any) -> Any:
    """Source opener for ``webcam``, ``0``, ``/dev/video0``."""
    if not is_camera_input(spec):
        return None
    from .camera import CameraSource

    return CameraSource(spec, size=getattr(opts, "size", None), fps=getattr(opts, "fps", None),
                        controls=getattr(opts, "live_controls", None))


def open_preview_sink(spec: str, opts: Any, source: Any) -> Any:
    """Sink opener for ``preview`` (also ``window``)."""
    if not _is_preview(spec):
        return None
    from .preview import PreviewState, PreviewWindow

    window = PreviewWindow(controls=getattr(opts, "live_controls", None),
                           state=PreviewState(view=getattr(opts, "view", "denoised")))
    return PreviewSink(window)


def open_vcam_sink(spec: str, opts: Any, source: Any) -> Any:
    """Sink opener for ``vcam``/``vcam:DEVICE``, unless a file or folder has that name."""
    from .vcam import open_vcam_sink as open_vcam

    return None if is_existing_path(spec) else open_vcam(spec, opts, source)


def _register_openers() -> None:
    """Teach ``open_source``/``open_sink`` cameras, ``preview`` and ``vcam`` (idempotent)."""
    from . import sinks, sources

    if open_camera_source not in sources.SOURCE_OPENERS:
        sources.SOURCE_OPENERS.insert(0, open_camera_source)
    for opener in (open_preview_sink, open_vcam_sink):
        if opener not in sinks.SINK_OPENERS:
            sinks.SINK_OPENERS.insert(0, opener)


def run_live(opts: argparse.Namespace) -> int:
    from . import cli
    from .live import LiveControls, LiveStats, RealtimeSource, format_stats, is_live_url
    from .pipeline import Pipeline
    from .processor import Processor, load_temporal
    from .sinks import open_sink
    from .sources import open_source

    if opts.strength < 0:
        raise UserError(f"--strength: expected a number >= 0, got {opts.strength}")
    outputs = list(opts.outputs) or ["preview"]
    if opts.preview and not any(_is_preview(s) for s in outputs):
        outputs.append("preview")
    from .temporal import plan  # --temporal auto may pick the model's recurrent twin

    asked_temporal = opts.temporal
    opts.model, opts.temporal = plan(opts.model or cli.default_model(opts.device), opts.temporal)
    recurrent = asked_temporal != "off" and opts.temporal == "off"
    temporal = load_temporal(opts.temporal)
    controls = LiveControls(strength=opts.strength, temporal=asked_temporal != "off")
    stats = LiveStats()
    opts.live_controls = controls
    _register_openers()

    source = open_source(opts.input, opts)
    # A window or a virtual camera shows frames as they come: a file feeding only those
    # plays at its own pace, as --realtime would.
    if not source.live and (opts.realtime or all(_is_live_sink(s) for s in outputs)):
        source = RealtimeSource(source, controls, pace=not is_live_url(opts.input))
    sinks: list[Any] = []
    try:
        for spec in outputs:
            sinks.append(open_sink(spec, opts, source))
        engine = cli.open_engine(opts)
    except BaseException:
        for sink in sinks:
            cli.discard_sink(sink)
        source.close()
        raise
    for sink in sinks:
        if isinstance(sink, PreviewSink):
            sink.window.model, sink.window.backend = engine.model, engine.name
            sink.window.stats = stats
    try:
        processor = Processor(engine, sigma=opts.sigma, strength=opts.strength,
                              temporal=temporal)
        pipeline = Pipeline(source, LiveProcessor(processor, controls, opts.temporal, recurrent),
                            sinks,
                            queue_size=1 if source.live else 4,
                            on_frame=lambda f: _delivered(f, stats, pipeline),
                            stop_event=controls.stop,  # the quit key stops every stage
                            max_frames=getattr(opts, "frames", None))
        try:
            # cli.main turns SIGTERM into Ctrl-C around all of this.
            result = _run(pipeline, controls, any(isinstance(s, PreviewSink) for s in sinks))
        except ValueError as exc:  # engines.EngineError part way: one line, as in cli.run
            if type(exc).__name__ != "EngineError":
                raise
            raise UserError(str(exc)) from None
        finally:
            controls.stop.set()
    finally:
        engine.close()
        source.close()
    for warning in source.warnings:
        log.warning("%s: %s", opts.input, warning)
    if opts.stats:
        print(format_stats(result.timings, stats, result.dropped, source), file=sys.stderr)
    if not opts.quiet:
        lat = stats.summary()["latency_ms"]["p50"]
        state = "interrupted after" if result.interrupted else "done:"
        temporal_note = f", temporal {opts.temporal}" if opts.temporal != "off" else ""
        print(f"{state} {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), "
              f"{result.dropped} dropped, latency median {lat:.0f} ms, model {engine.model}, "
              f"backend {engine.name}{temporal_note} -> {', '.join(outputs)}", file=sys.stderr)
    return cli.EXIT_INTERRUPTED if result.interrupted else 0


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


def _delivered(frame: Frame, stats: Any, pipeline: Any) -> None:
    stats.add_output(frame)
    stats.dropped = pipeline.dropped


"""One run, assembled in one place: the options become a source, sinks, an engine and a
processor, for a file job (``stream.cli``), a live one (``stream.livecli``) and the bench.

This is the only module that picks the model (``base`` on a CUDA GPU, ``fast`` otherwise),
the temporal mode (``stream.temporal.plan``: ``--temporal auto`` may pick the model's
recurrent twin), a camera profile's weights and noise map (``--profile``, stream/profiles.py)
and where the smoothing runs (on the engine's device, so ``--device cpu``
keeps it on the CPU).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Sink, Source
from .errors import UserError
from .live import LiveControls
from .openers import is_camera_input, open_sink, open_source
from .options import DenoiseOptions, RunOptions
from .pipeline import Pipeline, PipelineResult
from .processor import TEMPORAL_MODES, Processor, load_temporal
from .profiles import NlfEngine, check_size, nlf_level
from .profiles import load as load_profile

log = logging.getLogger(__name__)


def default_model(device: str) -> str:
    """``base`` where a CUDA GPU will run it, ``fast`` on CPUs."""
    if device == "cpu":
        return "fast"
    try:
        import torch

        return "base" if torch.cuda.is_available() else "fast"
    except Exception:  # noqa: BLE001 - no usable torch: the CPU choice
        return "fast"


def plan(denoise: DenoiseOptions) -> DenoiseOptions:
    """The options with the model and the smoothing mode decided (``--temporal auto``: the
    model's released recurrent twin, or the still-camera smoothing)."""
    from .temporal import plan as temporal_plan

    if denoise.model == "auto":  # a file job's auto: the device's default (live: stream/tiers.py)
        denoise = dataclasses.replace(denoise, model=None)
    if denoise.temporal not in TEMPORAL_MODES:
        raise UserError(f"--temporal: expected one of {', '.join(TEMPORAL_MODES)}, "
                        f"got {denoise.temporal!r}")
    if denoise.profile is not None:  # the profile's model, tuned weights (stream/profiles.py)
        profile = load_profile(denoise.profile, denoise.model)
        model, smoothing = temporal_plan(profile.model, denoise.temporal)
        if model != profile.model:  # a recurrent twin: the profile tuned the per-frame model
            model, smoothing = profile.model, "light"
        return dataclasses.replace(denoise, model=model, temporal=smoothing,
                                   weights=str(profile.weights))
    model, smoothing = temporal_plan(denoise.model or default_model(denoise.device),
                                     denoise.temporal)
    return dataclasses.replace(denoise, model=model, temporal=smoothing)


def open_engine(denoise: DenoiseOptions) -> Any:
    """``engines.open_engine`` for planned options (tests replace this)."""
    import engines

    extra = {"threads": denoise.threads} if denoise.threads else {}
    engine = engines.open_engine(model=denoise.model, backend=denoise.backend,  # EngineError: a UserError
                                 device=denoise.device, precision=denoise.precision,
                                 weights=denoise.weights, **extra)
    if denoise.profile is not None and denoise.sigma is None:
        profile = load_profile(denoise.profile, denoise.model)
        if profile.noise_map == "nlf":
            return NlfEngine(engine, profile)
    return engine


def smoothing_device(engine: Any) -> str:
    """The temporal smoothing runs where the engine runs: CUDA only for a CUDA engine."""
    device = str(getattr(engine, "device", "cpu"))
    return device if device.startswith("cuda") else "cpu"


def check_lookahead(options: RunOptions) -> None:
    """``--lookahead N`` where it cannot apply, one line (exit 2) before anything is opened: a
    live run never waits for the frames after each one, and only ``--temporal auto`` averages
    them."""
    from .openers import is_live_run

    asked = options.denoise.lookahead
    if asked and is_live_run(options):
        raise UserError(f"--lookahead {asked}: a live run (camera, --realtime, the window, a "
                        "virtual camera) cannot wait for the frames after each one; it averages "
                        "the frames before")
    if asked and options.denoise.temporal != "auto":
        raise UserError(f"--lookahead {asked} averages frames for --temporal auto, not "
                        f"--temporal {options.denoise.temporal}")


def lookahead_for(options: RunOptions, denoise: DenoiseOptions, engine: Any) -> int:
    """Frames a run looks ahead (``stream.lookahead``): ``--lookahead`` (default
    ``models.window_average.RADIUS``) in a file job whose ``--temporal auto`` runs the
    still-camera smoothing after a per-frame model; 0 otherwise."""
    from models.window_average import RADIUS

    from .openers import is_live_run

    if is_live_run(options) or denoise.temporal != "auto" or getattr(engine, "temporal", False):
        return 0
    asked = options.denoise.lookahead
    return RADIUS if asked is None else asked


def wiener_for(options: RunOptions, engine: Any = None) -> bool:
    """Whether the Wiener pass follows the network (``models.wiener``): ``--wiener on``, or
    ``auto`` in a file or image job whose engine runs on the CPU (live it costs about as much
    as ``fast`` itself; beside a CUDA engine it would run on the CPU, many times the engine's
    time)."""
    from .openers import is_live_run

    asked = options.denoise.wiener
    return asked == "on" or (asked == "auto" and not is_live_run(options)
                             and smoothing_device(engine) == "cpu")


def make_processor(denoise: DenoiseOptions, engine: Any, window: bool = False,
                   wiener: bool = False) -> Processor:
    """The processing stage for planned options and an open engine; ``window``: it will be run
    through a ``stream.lookahead.LookAhead`` (a file job); ``wiener``: the Wiener pass follows
    the network (``wiener_for``)."""
    estimator = None
    if isinstance(engine, NlfEngine):  # the profile's level, shaped per pixel by the engine
        estimator = nlf_level(load_profile(denoise.profile, denoise.model))
    return Processor(engine, sigma=denoise.sigma, strength=denoise.strength,
                     temporal=load_temporal(denoise.temporal, smoothing_device(engine), window),
                     estimator=estimator, coarse=denoise.coarse,
                     coarse_helper=coarse_helper(denoise, engine), wiener=wiener)


def coarse_helper(denoise: DenoiseOptions, engine: Any = None) -> Callable[[], Any] | None:
    """Opens the engine whose phase-split output the coarse-noise blend also averages in
    (``engines.phase_split.helper_for``) with the run's backend, device and precision (the
    processor calls it at the first frame it blends: a fraction of a second once the export
    is cached; with a camera profile too: the stock helper beside the profile's weights); None
    for a recurrent model (never split), ``--coarse-noise off`` or the helper itself.  Where the helper cannot
    be opened the blend is of two (a warning).  Beside a TensorRT engine the helper runs on
    torch on the same device: building a TensorRT plan takes minutes, and the frame thread
    would wait for it."""
    from engines.phase_split import helper_for
    from models import get_spec, model_names

    helper = helper_for(denoise.model)
    if helper is None or denoise.coarse == "off" \
            or denoise.model not in model_names(lab=True) or get_spec(denoise.model).temporal:
        return None

    backend = "torch" if str(getattr(engine, "name", "")).startswith("tensorrt") else denoise.backend
    asked = dataclasses.replace(denoise, model=helper, weights=None, profile=None, backend=backend)

    def open_helper() -> Any:
        try:
            return open_engine(asked)
        except Exception as exc:  # noqa: BLE001 - the run goes on without it
            log.warning("coarse noise: %s not available (%s); blending without it", helper, exc)
            return None

    return open_helper


def discard_sink(sink: Any) -> None:
    """Close a sink after a failure: a file output's partial file is removed (see AVSink)."""
    discard = getattr(sink, "discard", None)
    try:
        (discard or sink.close)()
    except Exception as exc:  # noqa: BLE001 - the first error is the one to report
        log.debug("closing %s after an error: %s", sink, exc)


@dataclass
class Session:
    """An assembled run: call ``run`` once; it closes the engine and the source."""

    options: RunOptions
    denoise: DenoiseOptions  # planned: model and smoothing decided
    source: Source
    sinks: list[Sink]
    engine: Any
    processor: Processor
    controls: LiveControls | None = None
    owns_engine: bool = True  # False: the caller's engine (the bench reuses one across sizes)
    lookahead: int = 0  # frames the processor waits for (``lookahead_for``): a file job's window

    @property
    def recurrent(self) -> bool:
        """The engine runs a recurrent model: temporal by itself, whatever the smoothing."""
        return bool(getattr(self.engine, "temporal", False))

    def run(self, process: Callable[[Any], Any] | None = None, *,
            runner: Callable[[Pipeline], PipelineResult] | None = None,
            **pipeline_options: Any) -> PipelineResult:
        """Join the pieces in a ``Pipeline`` and run it (``runner``: how, e.g. with the window
        loop on the main thread).  An engine error part way is one line (UserError)."""

        pipeline: Pipeline | None = None
        try:
            if process is None and self.lookahead:
                from .lookahead import LookAhead

                process = LookAhead(self.processor, self.lookahead)
            pipeline = Pipeline(self.source, process or self.processor, self.sinks,
                                max_frames=self.options.reading.frames,
                                stop_event=self.controls.stop if self.controls else None,
                                **pipeline_options)
            return (runner or Pipeline.run)(pipeline)  # an EngineError (a size a plan lacks) is a UserError
        finally:
            if self.controls is not None:
                self.controls.stop.set()
            if self.owns_engine:
                self.engine.close()
            getattr(self.processor, "close", lambda: None)()  # its coarse-noise helper engine
            # A reader stuck in a blocking read (stdin, a stalled network) keeps the source:
            # closing it under that thread could crash the decoder; the process exits anyway.
            if pipeline is None or not pipeline.reader_stuck:
                self.source.close()


def open_session(options: RunOptions, outputs: tuple[str, ...] | None = None, *,
                 controls: LiveControls | None = None,
                 wrap_source: Callable[[Source], Source] | None = None,
                 engine: Any = None) -> Session:
    """Open the source, the sinks (``outputs``, default the options') and the engine (unless
    an open one is given: then ``options.denoise`` must be planned already, and the engine
    stays open); on any failure what was opened is closed again (a file output's partial
    file removed)."""
    owns_engine = engine is None
    check_lookahead(options)
    denoise = plan(options.denoise) if owns_engine else options.denoise
    reading = options.reading
    if reading.duration == 0:
        raise UserError("--duration: expected a time above 0, got 0")
    source = open_source(options.input, options, controls)
    if (reading.start or reading.duration) and not hasattr(source, "start"):
        source.close()
        raise UserError("--start and --duration take a video input; for images and folders "
                        "use --frames N")
    if denoise.profile is not None:  # before any output exists: refused, nothing is written
        try:
            check_size(load_profile(denoise.profile, denoise.model), source.info.width,
                       source.info.height, options.input, camera=is_camera_input(options.input),
                       video=source.is_video)
        except BaseException:
            source.close()
            raise
    if wrap_source is not None:
        source = wrap_source(source)
    sinks: list[Sink] = []
    try:
        for spec in options.outputs if outputs is None else outputs:
            sinks.append(open_sink(spec, options, source, controls))
        if engine is None:
            engine = open_engine(denoise)
    except BaseException:
        for sink in sinks:
            discard_sink(sink)
        source.close()
        raise
    try:
        lookahead = lookahead_for(options, denoise, engine)
        processor = make_processor(denoise, engine, window=lookahead > 0,
                                   wiener=wiener_for(options, engine))
    except BaseException:
        if owns_engine:
            engine.close()
        for sink in sinks:
            discard_sink(sink)
        source.close()
        raise
    return Session(options, denoise, source, sinks, engine, processor, controls, owns_engine,
                   lookahead)

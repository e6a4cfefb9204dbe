"""What a run was asked to do, as frozen dataclasses built once from the command line.

``RunOptions.from_args(namespace)`` is the only place that reads argparse's namespace; every
module below takes the one dataclass (or the few fields) it uses.  ``stream.session`` turns
these into a source, a processor, sinks and an engine.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DenoiseOptions:
    """What to denoise with.  ``model`` None or ``auto``: the session picks (base on CUDA, fast
    on CPU), and on a live source the tier then follows the pace (stream/tiers.py);
    ``sigma`` None: estimated from the frames."""

    model: str | None = None
    sigma: float | None = None
    strength: float = 1.0
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    temporal: str = "auto"  # off|auto|light|strong
    coarse: str = "auto"  # auto|off|blend: engines.phase_split.MODES
    profile: str | None = None  # a camera profile (python -m stream calibrate): weights, noise map
    # file jobs: frames after each one that ``--temporal auto`` averages it with (and as many
    # before); None: ``stream.session.lookahead_for`` decides (4 in a file job, 0 live)
    lookahead: int | None = None
    # the Wiener pass after the network (``models.wiener``): auto|on|off; ``auto`` runs it in
    # file and image jobs, not live (``stream.session.wiener_for``)
    wiener: str = "auto"
    weights: str | None = None  # set by the session from the profile: the tuned weights


@dataclass(frozen=True)
class InputOptions:
    """How to read a file, URL or stdin (``stream.sources.AVSource``)."""

    timeout: float = 10.0  # network inputs: seconds to open, or to wait for data
    start: float | None = None  # seconds into a video
    duration: float | None = None
    video_stream: int | None = None  # the Nth video stream, from 0
    no_audio: bool = False  # leave the audio out (subtitles are still copied)
    frames: int | None = None  # stop after N frames


@dataclass(frozen=True)
class EncodeOptions:
    """How outputs are written (``stream.avsink.AVSink``; ``overwrite`` for every path sink)."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    bitrate: int | None = None
    gop: int | None = None
    encoder_opts: tuple[tuple[str, str], ...] = ()
    audio_codec: str | None = None
    fps: float | None = None  # frame rate for inputs without timing (images, folders)
    overwrite: bool = False


@dataclass(frozen=True)
class CameraOptions:
    """What to ask a camera for (``stream.camera.CameraSource``)."""

    size: tuple[int, int] | None = None  # (width, height)
    fps: float | None = None


@dataclass(frozen=True)
class LiveOptions:
    """The live path: pacing, the preview window and what the controls start at."""

    realtime: bool = False
    preview: bool = False
    view: str = "denoised"
    stats: bool = False


@dataclass(frozen=True)
class RunOptions:
    input: str
    outputs: tuple[str, ...] = ()
    denoise: DenoiseOptions = field(default_factory=DenoiseOptions)
    reading: InputOptions = field(default_factory=InputOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    camera: CameraOptions = field(default_factory=CameraOptions)
    live: LiveOptions = field(default_factory=LiveOptions)
    quiet: bool = False
    verbose: int = 0

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> RunOptions:
        """The parsed command line of ``python -m stream`` (see ``stream.cli.build_parser``)."""
        return cls(
            input=ns.input,
            outputs=tuple(ns.outputs),
            denoise=DenoiseOptions(model=ns.model, sigma=ns.sigma, strength=ns.strength,
                                   backend=ns.backend, device=ns.device,
                                   precision=ns.precision, threads=ns.threads,
                                   temporal=ns.temporal,
                                   coarse=getattr(ns, "coarse_noise", "auto"),
                                   profile=getattr(ns, "profile", None),
                                   lookahead=getattr(ns, "lookahead", None),
                                   wiener=getattr(ns, "wiener", "auto")),
            reading=InputOptions(timeout=ns.timeout, start=ns.start, duration=ns.duration,
                                 video_stream=ns.video_stream, no_audio=ns.no_audio,
                                 frames=ns.frames),
            encode=EncodeOptions(codec=ns.codec, crf=ns.crf, preset=ns.preset,
                                 pix_fmt=ns.pix_fmt, bitrate=ns.bitrate, gop=ns.gop,
                                 encoder_opts=tuple(ns.encoder_opt or ()),
                                 audio_codec=ns.audio_codec, fps=ns.fps,
                                 overwrite=ns.overwrite),
            camera=CameraOptions(size=ns.size, fps=ns.fps),
            live=LiveOptions(realtime=ns.realtime, preview=ns.preview, view=ns.view,
                             stats=ns.stats),
            quiet=ns.quiet,
            verbose=ns.verbose,
        )

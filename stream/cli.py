"""``python -m stream INPUT OUTPUT [OUTPUT...]``: denoise a file, images, a folder or a stream.

Exit status: 0 done (warnings possible, e.g. a truncated input), 2 a user error (one line on
stderr), 130 interrupted (Ctrl-C / SIGTERM; outputs are finalised and playable).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .errors import UserError
from .livecli import add_live_options, run_live, wants_live

log = logging.getLogger("stream")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Other modules add options here (each gets the parser), e.g. the live path's --preview.
OPTION_HOOKS: list[Callable[[argparse.ArgumentParser], None]] = [add_live_options]


MAX_STRENGTH = 10.0  # at 10 a noise level of 7.5 already reaches the models' cap (75)
MAX_FPS = 1000.0
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


def number_arg(lo: float, hi: float | None, *, low_open: bool = False, integer: bool = False,
               extra: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number in lo..hi (``low_open``: above lo; ``hi`` None: no
    upper bound), else one message naming the range (argparse adds the option's name)."""
    kind = "an integer" if integer else "a number"
    if hi is None:
        above = f"above {lo:g}" if low_open else f"of {lo:g} or more"
    else:
        above = f"above {lo:g} up to {hi:g}" if low_open else f"in {lo:g}..{hi:g}"

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (hi is not None and value > hi) or value < lo \
                or (low_open and value == lo):
            raise argparse.ArgumentTypeError(f"expected {kind} {above}{extra}, got {text!r}")
        return value

    return parse


def sigma_arg(text: str) -> float | None:
    if text == "auto":
        return None
    return number_arg(0, 255, extra=" or 'auto'")(text)


def time_arg(text: str) -> float:
    """Seconds: ``90``, ``1:30``, ``01:02:03.5`` (as FFmpeg's -ss/-t take them)."""
    parts = text.split(":")
    try:
        if len(parts) > 3 or any(p.strip() == "" or p.strip().startswith(("-", "+"))
                                 for p in parts):
            raise ValueError
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(
            f"expected a time in seconds or [HH:]MM:SS, 0 or more, got {text!r}")
    return seconds


def bitrate_arg(text: str) -> int:
    """Bits per second: ``2500000``, ``2500k``, ``2.5M``."""
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:].lower(), 1.0)
    number = text[:-1] if scale != 1.0 else text
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 1e3 <= value <= 1e10:
        raise argparse.ArgumentTypeError(
            f"expected bits per second, 1k..10G (e.g. 2500k, 8M), got {text!r}")
    return int(value)


def encoder_opt_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. x264-params=keyint=50), "
                                         f"got {text!r}")
    return key.strip(), value


def preset_arg(text: str) -> str:
    if text not in X264_PRESETS:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(X264_PRESETS)}, got {text!r}")
    return text


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("denoise-stream")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m stream",
        description="Denoise a video file, URL, image, folder of images or Y4M stream.",
        epilog="Outputs: a video file (.mp4, .mkv, .mov...), an image, a folder (name/), "
               "udp:// or srt:// (MPEG-TS), or - for Y4M on stdout.")
    p.add_argument("input", help="file, URL, image, folder of images, or - (Y4M on stdin)")
    p.add_argument("outputs", nargs="*", metavar="output", help="where the result goes")
    g = p.add_argument_group("denoising")
    g.add_argument("--model", default=None,
                   help="registered model (default: base on a CUDA GPU, fast otherwise)")
    g.add_argument("--sigma", type=sigma_arg, default=None, metavar="N|auto",
                   help="noise level in 0..255 units, or auto (estimated from the frames; "
                        "default)")
    g.add_argument("--strength", type=number_arg(0, MAX_STRENGTH), default=1.0,
                   help=f"multiplies the noise level given to the model, 0..{MAX_STRENGTH:g} "
                        "(default 1.0; the level is capped at 75, the models' training range)")
    g.add_argument("--backend", default="auto",
                   help="auto|torch|onnxruntime|tensorrt (default auto)")
    g.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default auto)")
    g.add_argument("--precision", default="auto", help="auto|fp32|fp16|bf16 (default auto)")
    g.add_argument("--threads", type=number_arg(1, 256, integer=True), default=None,
                   metavar="N", help="CPU threads for the denoiser (torch-cpu, onnxruntime-cpu; "
                   "default half the cores)")
    g.add_argument("--temporal", default="auto", metavar="MODE",
                   help="off|auto|light|strong (default auto: the model's recurrent twin when "
                        "one is released, else light motion-adaptive smoothing)")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", default=None,
                   help="video codec: h264 (default), hevc, ffv1 (lossless), vp9, mpeg4...")
    e.add_argument("--crf", type=number_arg(0, 63, integer=True), default=None,
                   help="quality for h264/hevc (0..51), vp9/av1 (0..63); lower is better; "
                        "default 18")
    e.add_argument("--preset", type=preset_arg, default=None,
                   help="x264/x265 preset, ultrafast..placebo (default fast)")
    e.add_argument("--pix-fmt", default=None, help="encoder pixel format (default: automatic)")
    e.add_argument("--bitrate", type=bitrate_arg, default=None, metavar="RATE",
                   help="target bitrate instead of constant quality, e.g. 4M (network outputs)")
    e.add_argument("--gop", type=number_arg(1, 10000, integer=True), default=None,
                   metavar="N", help="key frame at least every N frames")
    e.add_argument("--encoder-opt", type=encoder_opt_arg, action="append", default=None,
                   metavar="KEY=VALUE", help="an FFmpeg encoder option, passed as is "
                   "(repeatable; e.g. x264-params=aq-mode=3, tune=film)")
    e.add_argument("--an", dest="no_audio", action="store_true",
                   help="leave the audio out (it is copied, never re-encoded, by default)")
    e.add_argument("--audio-codec", default=None, metavar="NAME",
                   help="re-encode the audio (aac, opus, mp3, flac...), e.g. for a container "
                        "that cannot hold the input's")
    e.add_argument("--fps", type=number_arg(0, MAX_FPS, low_open=True), default=None,
                   help="frame rate for inputs without timing (images, folders; default 25)")
    t = p.add_argument_group("part of the input")
    t.add_argument("--video-stream", type=number_arg(0, 99, integer=True), default=None,
                   metavar="N", help="denoise the input's Nth video stream (from 0; default 0)")
    t.add_argument("--start", type=time_arg, default=None, metavar="T",
                   help="start T into a video (seconds or [HH:]MM:SS); the output starts at 0")
    t.add_argument("--duration", type=time_arg, default=None, metavar="T",
                   help="denoise T of a video (from --start)")
    t.add_argument("--frames", type=number_arg(1, None, integer=True), default=None,
                   metavar="N", help="stop after N frames")
    o = p.add_argument_group("general")
    o.add_argument("-y", "--overwrite", action="store_true", help="overwrite existing outputs")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more log messages")
    o.add_argument("--timeout", type=number_arg(0, 86400, low_open=True), default=10.0,
                   metavar="S", help="network inputs: give up when opening, or waiting for "
                   "data, takes longer than S seconds (default 10)")
    o.add_argument("--version", action="version", version=f"denoise-stream {package_version()}")
    for hook in OPTION_HOOKS:
        hook(p)
    return p


def default_model(device: str) -> str:
    """``base`` where a CUDA GPU will run it, ``fast`` on CPUs."""
    if device == "cpu":
        return "fast"
    try:
        import torch

        return "base" if torch.cuda.is_available() else "fast"
    except Exception:  # noqa: BLE001
        return "fast"


def open_engine(opts: argparse.Namespace) -> Any:
    import engines

    model = opts.model or default_model(opts.device)
    extra = {"threads": opts.threads} if getattr(opts, "threads", None) else {}
    try:
        return engines.open_engine(model=model, backend=opts.backend, device=opts.device,
                                   precision=opts.precision, **extra)
    except engines.EngineError as exc:
        raise UserError(str(exc)) from None


def discard_sink(sink: Any) -> None:
    """Close a sink after a failure: a file output's partial file is removed (see AVSink)."""
    discard = getattr(sink, "discard", None)
    try:
        (discard or sink.close)()
    except Exception as exc:  # noqa: BLE001 - the first error is the one to report
        log.debug("closing %s after an error: %s", sink, exc)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: KeyboardInterrupt on the main thread, outputs finalised."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test thread)
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run(opts: argparse.Namespace) -> int:
    from .pipeline import Pipeline
    from .processor import Processor, load_temporal
    from .progress import Progress
    from .sinks import open_sink
    from .sources import open_source

    if wants_live(opts):  # camera, --realtime, preview window, virtual camera: livecli.py
        return run_live(opts)
    if not opts.outputs:
        raise UserError("no output given; e.g. python -m stream in.mp4 out.mp4")
    from .temporal import plan  # --temporal auto may pick the model's recurrent twin

    opts.model, opts.temporal = plan(opts.model or default_model(opts.device), opts.temporal)
    temporal = load_temporal(opts.temporal)
    if opts.duration == 0:
        raise UserError("--duration: expected a time above 0, got 0")
    source = open_source(opts.input, opts)
    if (opts.start or opts.duration) and not hasattr(source, "start"):
        source.close()
        raise UserError("--start and --duration take a video input; for images and folders "
                        "use --frames N")
    sinks: list[Any] = []
    try:
        for spec in opts.outputs:
            sinks.append(open_sink(spec, opts, source))
        engine = open_engine(opts)
    except BaseException:
        for sink in sinks:
            discard_sink(sink)
        source.close()
        raise
    pipeline: Pipeline | None = None
    try:
        processor = Processor(engine, sigma=opts.sigma, strength=opts.strength,
                              temporal=temporal)
        total = source.info.frames
        if opts.start or opts.duration:
            total = None  # a part of the input: the container's count says nothing
        if opts.frames is not None:
            total = min(total, opts.frames) if total else opts.frames
        progress = Progress(total=total, enabled=not opts.quiet)
        pipeline = Pipeline(source, processor, sinks, on_frame=progress.update,
                            max_frames=opts.frames)
        try:
            result = pipeline.run()
        except ValueError as exc:  # engines.EngineError: one line, e.g. a size a plan lacks
            if type(exc).__name__ != "EngineError":
                raise
            raise UserError(str(exc)) from None
        finally:
            progress.close()
    finally:
        engine.close()
        if pipeline is None or not pipeline.reader_stuck:
            source.close()
    if result.frames == 0 and not result.interrupted:
        why = f" ({source.warnings[0]})" if source.warnings else ""
        name = "stdin" if opts.input == "-" else opts.input
        if opts.start and not source.warnings:
            raise UserError(f"no frames at or after --start {opts.start:g} s in {name}; "
                            "nothing was written")
        raise UserError(f"no frames could be decoded from {name}{why}; nothing was written")
    log.info("stage times (ms/frame): %s", ", ".join(
        f"{k} {t.ms:.1f}" for k, t in result.timings.items()))
    for warning in source.warnings:
        log.warning("%s: %s", opts.input, warning)
    if not opts.quiet:
        sigma = f"{processor.mean_sigma:.1f}" + (" (auto)" if opts.sigma is None else "")
        state = "interrupted after" if result.interrupted else "denoised"
        temporal_note = f", temporal {opts.temporal}" if opts.temporal != "off" else ""
        print(f"{state} {result.frames} frames in {result.seconds:.1f} s "
              f"({result.fps:.1f} fps), model {engine.model}, backend {engine.name}, "
              f"sigma {sigma}{temporal_note} -> {', '.join(opts.outputs)}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.interrupted else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["bench"] and not os.path.exists("bench"):
        from .bench import main as bench_main

        return bench_main(args[1:])
    parser = build_parser()
    try:
        opts = parser.parse_args(args)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    level = logging.WARNING - 10 * min(opts.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        with _terminate_as_interrupt():
            return run(opts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

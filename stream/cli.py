"""``python -m stream INPUT OUTPUT [OUTPUT...]``: denoise a file, images, a folder or a stream.

Exit status: 0 done (warnings possible, e.g. a truncated input), 2 a user error (one line on
stderr), 130 interrupted (Ctrl-C / SIGTERM; outputs are finalised and playable).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from . import grey
from .errors import EXIT_INTERRUPTED, EXIT_USAGE, UserError, configure_logging
from .livecli import add_live_options, run_live
from .openers import is_existing_path, is_live_run
from .options import RunOptions

log = logging.getLogger("stream")



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
                   help="registered model, or auto (the default: base on a CUDA GPU, fast "
                        "otherwise; on a live source the tier then follows the source's pace)")
    g.add_argument("--sigma", type=sigma_arg, default=None, metavar="N|auto",
                   help="noise level in 0..255 units, or auto (estimated from the frames; "
                        "default)")
    g.add_argument("--strength", type=number_arg(0, MAX_STRENGTH), default=1.0,
                   help=f"multiplies the noise level given to the model, 0..{MAX_STRENGTH:g} "
                        "(default 1.0; the level is capped at 75, the models' training range)")
    g.add_argument("--backend", default="auto",
                   help="auto|torch|onnxruntime|tensorrt (default auto)")
    g.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default auto)")
    g.add_argument("--precision", default="auto", help="auto|fp32|fp16|bf16|int8 (default auto; int8: ONNX Runtime on a CPU)")
    g.add_argument("--threads", type=number_arg(1, 256, integer=True), default=None,
                   metavar="N", help="CPU threads for the denoiser (torch-cpu, onnxruntime-cpu; "
                   "default half the cores)")
    g.add_argument("--profile", default=None, metavar="NAME",
                   help="a camera profile (python -m stream calibrate; python -m stream "
                        "profiles lists them): its tuned weights and noise map")
    g.add_argument("--temporal", default="auto", metavar="MODE",
                   help="off|auto|light|strong (default auto: the model's recurrent twin when "
                        "one is released, else averaging along the motion, long where the "
                        "camera is still)")
    g.add_argument("--lookahead", type=number_arg(0, 16, integer=True), default=None,
                   metavar="N", help="file jobs with --temporal auto: average each frame with "
                   "up to N frames after it and N before, along the motion (default 4; 0: only "
                   "the frames before, as a live run does)")
    g.add_argument("--coarse-noise", default="auto", choices=("auto", "off", "blend"),
                   help="coarse camera noise: blend the frame's denoising with that of its "
                        "2x2 phase sub-images (twice the network's time), off, or auto (the "
                        "default: blend where the noise reads coarse)")
    g.add_argument("--wiener", default="auto", choices=("auto", "on", "off"),
                   help="a second pass where the noise reads white: the network's output as the "
                        "pilot of a Wiener filter in 8x8 DCT blocks, which keeps the detail a "
                        "small network smooths (auto, the default: in file and image jobs; on: "
                        "live too, about 60 ms a 640x360 frame on 2 CPU cores; off)")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", default=None,
                   help="video codec: h264 (default), hevc, ffv1 (lossless), vp9, mpeg4...")
    e.add_argument("--crf", type=number_arg(0, 63, integer=True), default=None,
                   help="quality for h264/hevc (0..51), vp9/av1 (0..63); lower is better; "
                        "default 18")
    e.add_argument("--preset", type=preset_arg, default=None,
                   help="x264/x265 preset, ultrafast..placebo (default fast; veryfast in a live run or to a network stream)")
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
    add_live_options(p)
    return p


class _Interrupts:
    """Whether Ctrl-C or SIGTERM arrived during the run: an interrupt that lands inside a
    library's import or start-up comes back as that library's error (ONNX Runtime's import
    then says "initialization failed", which read as "onnxruntime is not installed")."""

    seen = False


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: KeyboardInterrupt on the main thread, outputs finalised;
    both are noted in ``_Interrupts.seen``."""

    def handler(signum: int, frame: Any) -> None:
        _Interrupts.seen = True
        raise KeyboardInterrupt

    _Interrupts.seen = False
    previous = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
            continue  # ignored (a background job) or someone else's: left as it is
        try:
            previous.append((sig, signal.signal(sig, handler)))
        except ValueError:  # not the main thread (e.g. called from a test thread)
            pass
    try:
        yield
    finally:
        for sig, before in previous:
            signal.signal(sig, before)


def run(options: RunOptions) -> int:
    """A file job (or the live path, for a camera, ``--realtime``, the window, ``vcam``)."""
    from .progress import Progress
    from .session import open_session

    if is_live_run(options):  # camera, --realtime, preview window, virtual camera: livecli.py
        return run_live(options)
    if not options.outputs:
        raise UserError("no output given; e.g. python -m stream in.mp4 out.mp4")
    session = open_session(options)
    reading = options.reading
    total = session.source.info.frames
    if reading.start or reading.duration:
        total = None  # a part of the input: the container's count says nothing
    if reading.frames is not None:
        total = min(total, reading.frames) if total else reading.frames
    progress = Progress(total=total, enabled=not options.quiet)
    try:
        result = session.run(on_frame=progress.update)
    finally:
        progress.close()
    source, engine, processor = session.source, session.engine, session.processor
    if result.frames == 0 and not result.interrupted:
        why = f" ({source.warnings[0]})" if source.warnings else ""
        name = "stdin" if options.input == "-" else options.input
        if reading.start and not source.warnings:
            raise UserError(f"no frames at or after --start {reading.start:g} s in {name}; "
                            "nothing was written")
        raise UserError(f"no frames could be decoded from {name}{why}; nothing was written")
    log.info("stage times (ms/frame): %s", ", ".join(
        f"{k} {t.ms:.1f}" for k, t in result.timings.items()))
    for warning in source.warnings:
        log.warning("%s: %s", options.input, warning)
    if not options.quiet:
        sigma = f"{processor.mean_sigma:.1f}" + (" (auto)" if options.denoise.sigma is None else "")
        state = "interrupted after" if result.interrupted else "denoised"
        smoothing = session.denoise.temporal
        temporal_note = f", temporal {smoothing}" if smoothing != "off" else ""
        if processor.coarse_frames:
            temporal_note += f", coarse noise ({processor.coarse_frames} frames split)"
        if getattr(processor, "wiener_frames", 0):
            temporal_note += f", Wiener pass ({processor.wiener_frames} frames)"
        if getattr(processor, "grey_frames", 0):
            temporal_note += f", grey ({processor.grey_frames} frames: told {grey.GAIN:.2f} times the level)"
        print(f"{state} {result.frames} frames in {result.seconds:.1f} s "
              f"({result.fps:.1f} fps), model {engine.model}, backend {engine.name}, "
              f"sigma {sigma}{temporal_note} -> {', '.join(options.outputs)}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.interrupted else 0


SUBCOMMANDS = ("calibrate", "profiles")  # an existing file or folder of that name wins


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS and not is_existing_path(args[0]):
        from . import calibrate

        return calibrate.main(args[1:]) if args[0] == "calibrate" else calibrate.profiles_main(args[1:])
    parser = build_parser()
    try:
        options = RunOptions.from_args(parser.parse_args(argv))
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(options.verbose)
    try:
        with _terminate_as_interrupt():
            return run(options)
    except UserError as exc:
        if _Interrupts.seen:  # the error is what the interrupt left behind
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

"""``python -m stream INPUT OUTPUT [OUTPUT...]``: denoise a file, images, a folder or a stream.

Exit status: 0 done (warnings possible, e.g. a truncated input), 2 a user error (one line on
stderr), 130 interrupted (Ctrl-C / SIGTERM; outputs are finalised and playable).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
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


def sigma_arg(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in 0..255 or 'auto', got {text!r}")
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"expected a number in 0..255 or 'auto', got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    g.add_argument("--strength", type=float, default=1.0,
                   help="multiplies the noise level given to the model (default 1.0)")
    g.add_argument("--backend", default="auto",
                   help="auto|torch|onnxruntime|tensorrt (default auto)")
    g.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default auto)")
    g.add_argument("--precision", default="auto", help="auto|fp32|fp16|bf16 (default auto)")
    g.add_argument("--temporal", default="auto", metavar="MODE",
                   help="off|auto|light|strong (default auto: the model's recurrent twin when "
                        "one is released, else light motion-adaptive smoothing)")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", default=None,
                   help="video codec: h264 (default), hevc, ffv1 (lossless), vp9, mpeg4...")
    e.add_argument("--crf", type=int, default=None,
                   help="quality for h264/hevc/vp9 (lower is better; default 18)")
    e.add_argument("--preset", default=None, help="x264/x265 preset (default fast)")
    e.add_argument("--pix-fmt", default=None, help="encoder pixel format (default: automatic)")
    e.add_argument("--fps", type=float, default=None,
                   help="frame rate for inputs without timing (images, folders; default 25)")
    o = p.add_argument_group("general")
    o.add_argument("-y", "--overwrite", action="store_true", help="overwrite existing outputs")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more log messages")
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
    try:
        return engines.open_engine(model=model, backend=opts.backend, device=opts.device,
                                   precision=opts.precision)
    except engines.EngineError as exc:
        raise UserError(str(exc)) from None


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
    if opts.strength < 0:
        raise UserError(f"--strength: expected a number >= 0, got {opts.strength}")
    from .temporal import plan  # --temporal auto may pick the model's recurrent twin

    opts.model, opts.temporal = plan(opts.model or default_model(opts.device), opts.temporal)
    temporal = load_temporal(opts.temporal)
    source = open_source(opts.input, opts)
    sinks: list[Any] = []
    try:
        for spec in opts.outputs:
            sinks.append(open_sink(spec, opts, source))
        engine = open_engine(opts)
    except BaseException:
        for sink in sinks:
            sink.close()
        source.close()
        raise
    pipeline: Pipeline | None = None
    try:
        processor = Processor(engine, sigma=opts.sigma, strength=opts.strength,
                              temporal=temporal)
        progress = Progress(total=source.info.frames, enabled=not opts.quiet)
        pipeline = Pipeline(source, processor, sinks, on_frame=progress.update)
        try:
            result = pipeline.run()
        finally:
            progress.close()
    finally:
        engine.close()
        if pipeline is None or not pipeline.reader_stuck:
            source.close()
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
    opts = parser.parse_args(argv)
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

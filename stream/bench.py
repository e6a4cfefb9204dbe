"""``python -m stream.bench``: file-to-file speed at 480p and 1080p, with time per stage.

Makes an H.264 input per size from the bundled sample (scaled), runs the same pipeline as
``python -m stream in.mp4 out.mp4`` (default encoder settings) and prints frames per second
end to end plus the busy time per frame of each stage: decode (reader thread: demux, decode,
YUV->RGB), denoise (processor: noise estimate + engine + temporal stage), encode (writer: RGB->YUV, x264, mux).
Stages run in parallel threads, so fps can beat 1000 / the sum of the stages.

``python -m stream.bench --compare``: quality and speed beside FFmpeg's filters
(``stream.compare``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import parse_size

from .errors import EXIT_USAGE, UserError, configure_logging
from .options import DenoiseOptions, EncodeOptions, RunOptions
from .session import open_engine, open_session, plan

SIZES = {"360p": (640, 360), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
SAMPLE = Path(__file__).with_name("samples") / "sample.mp4"


def make_input(path: Path, width: int, height: int, frames: int) -> None:
    """The sample's frames scaled to ``width``x``height``, looped to ``frames``, as H.264."""
    import av
    import cv2

    with av.open(str(SAMPLE)) as src:
        pictures = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(frames):
            img = cv2.resize(pictures[i % len(pictures)], (width, height),
                             interpolation=cv2.INTER_LINEAR)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)


def run_one(engine: Any, width: int, height: int, frames: int, options: RunOptions,
            workdir: Path) -> dict[str, Any]:
    """One size through the file path's assembly (``stream.session``), the engine reused."""
    src_path, out_path = workdir / f"in_{height}.mp4", workdir / f"out_{height}.mp4"
    make_input(src_path, width, height, frames)
    # warm up the engine at this size so one-off set-up is not counted
    engine.infer(np.zeros((1, height, width, 3), np.uint8), np.array([10.0], np.float32))
    options = dataclasses.replace(options, input=str(src_path), outputs=(str(out_path),))
    result = open_session(options, engine=engine).run()
    t = result.timings
    encode = sum(v.seconds for k, v in t.items() if k.startswith("write:"))
    return {"size": f"{width}x{height}", "frames": result.frames, "seconds": result.seconds,
            "fps": result.fps, "decode_ms": t["decode"].ms, "denoise_ms": t["process"].ms,
            "encode_ms": 1000 * encode / max(result.frames, 1)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--compare" in argv:
        from .compare import main as compare_main

        return compare_main([a for a in argv if a != "--compare"])
    p = argparse.ArgumentParser(prog="python -m stream.bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="480p,1080p",
                   help=f"comma-separated, from {', '.join(SIZES)} or WxH (default 480p,1080p)")
    p.add_argument("--frames", type=int, default=48, help="frames per size (default 48)")
    p.add_argument("--model", default=None, help="default: as python -m stream")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--sigma", type=float, default=None, help="fixed noise level (default auto)")
    p.add_argument("--codec", default=None, help="output codec (default h264)")
    p.add_argument("--temporal", default="auto",
                   help="off|auto|light|strong, as python -m stream (default auto); its time "
                        "counts as denoise")
    p.add_argument("--lookahead", type=int, choices=range(17), default=None, metavar="N",
                   help="as python -m stream: frames --temporal auto averages each one with, "
                        "0..16 (default 4; 0: the causal path)")
    p.add_argument("--wiener", choices=("auto", "on", "off"), default="auto",
                   help="as python -m stream: the Wiener pass after the network where the noise "
                        "reads white (auto: on in these file jobs; off: the path without it)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log messages")
    p.add_argument("--compare", action="store_true",
                   help="tiers vs FFmpeg filters: PSNR, SSIM, flicker, fps (--compare --help)")
    args = p.parse_args(argv)
    configure_logging(args.verbose)

    sizes = []
    for name in args.sizes.split(","):
        name = name.strip()
        if name in SIZES:
            sizes.append(SIZES[name])
            continue
        try:
            sizes.append(parse_size(name))
        except ValueError:
            print(f"error: unknown size {name!r}; expected {', '.join(SIZES)} or WxH",
                  file=sys.stderr)
            return EXIT_USAGE
    denoise = DenoiseOptions(model=args.model, sigma=args.sigma, backend=args.backend,
                             device=args.device, precision=args.precision,
                             temporal=args.temporal, lookahead=args.lookahead, wiener=args.wiener)
    try:
        denoise = plan(denoise)
        engine = open_engine(denoise)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    mode = denoise.temporal
    import torch

    header = (f"model {engine.model}, backend {engine.name}, temporal {mode}, sigma "
              f"{'auto' if args.sigma is None else args.sigma}, {os.cpu_count()} CPU cores, "
              f"{platform.machine()}, torch {torch.__version__}, {args.frames} frames per size")
    print(header)
    print(f"{'size':>10} {'fps':>7} {'decode ms':>10} {'denoise ms':>11} {'encode ms':>10}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        try:
            options = RunOptions(input="", denoise=denoise,
                                 encode=EncodeOptions(codec=args.codec, overwrite=True))
            for width, height in sizes:
                row = run_one(engine, width, height, args.frames, options, Path(tmp))
                rows.append(row)
                print(f"{row['size']:>10} {row['fps']:7.2f} {row['decode_ms']:10.1f} "
                      f"{row['denoise_ms']:11.1f} {row['encode_ms']:10.1f}", flush=True)
        finally:
            engine.close()
    if args.json:
        args.json.write_text(json.dumps({"header": header, "model": engine.model,
                                         "backend": engine.name, "temporal": mode,
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m engines build | bench | list

    python -m engines build --model base --precision fp16 --min 256x256 --opt 1920x1080 \\
        --max 3840x2160 [--out DIR] [--onnx-only]
    python -m engines bench --model fast --size 640x360 [--backend all|auto|torch|onnxruntime|
        tensorrt|torch-cpu|...] [--streams N] [--json F]
    python -m engines list [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import cache
from .base import BackendUnavailable, EngineError, parse_size

log = logging.getLogger("engines")

# ONNX Runtime against PyTorch fp32 on the synthetic picture (int8: what rounding the inner
# layers to 8 bits leaves; ``tiny`` measured 48 dB, ``fast`` 43)
THRESHOLD_DB = {"fp32": 45.0, "fp16": 38.0, "int8": 35.0}
VALIDATE_SIZES = [(37, 61), (121, 203), (255, 321)]


def _size(text: str) -> tuple[int, int]:
    """WxH on the command line -> (H, W) for the engines."""
    try:
        w, h = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return h, w


def cmd_build(args: argparse.Namespace) -> int:

    from .export import ensure_onnx, export_onnx, onnx_path_for, quantize_cached
    from .validate import validate

    try:
        profile = cache.Profile(args.min, args.opt, args.max, (1, 1, args.max_batch))
    except ValueError as e:
        raise EngineError(str(e)) from None
    directory = cache.cache_dir(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    from models import get_spec

    try:
        spec = get_spec(args.model)
    except ValueError as e:
        raise EngineError(str(e)) from None
    if spec.half_scale:  # its engines run that network on half-size frames
        print(f"{args.model} runs {spec.weights_of}'s network on half-size frames: building {spec.weights_of}")
        args.model = spec.weights_of
    if args.force:
        fresh = "fp32" if args.precision == "int8" else args.precision
        onnx = export_onnx(args.model, fresh, onnx_path_for(args.model, fresh, directory))
        if args.precision == "int8":
            onnx = quantize_cached(args.model, onnx, onnx_path_for(args.model, "int8", directory))
    else:
        onnx = ensure_onnx(args.model, args.precision, directory)
    print(f"ONNX: {onnx} (dynamic batch, height, width; {args.precision})")
    try:
        rows = validate(onnx, args.model, args.precision, VALIDATE_SIZES)
    except BackendUnavailable as e:
        print(f"validation skipped: {e}")
        rows = []
    worst = min((r["psnr_db"] for r in rows), default=float("inf"))
    for r in rows:
        print(f"  ONNX Runtime vs PyTorch fp32 at {r['width']}x{r['height']}: "
              f"max abs error {r['max_abs_err']:.2e}, PSNR {r['psnr_db']:.1f} dB")
    if worst < THRESHOLD_DB[args.precision]:
        raise EngineError(f"validation below {THRESHOLD_DB[args.precision]} dB")
    if args.onnx_only:
        return 0
    from .build import TrtOps, ensure_plan

    try:
        ops = TrtOps()
    except BackendUnavailable as e:
        raise EngineError(f"{e}; the ONNX file is ready, or use --onnx-only") from None
    import torch

    if not torch.cuda.is_available():
        raise EngineError("building a TensorRT plan needs a CUDA GPU; use --onnx-only here")
    multiple = int(cache.read_sidecar(onnx)["multiple"])
    loaded = ensure_plan(args.model, args.precision, profile, onnx, multiple, directory, ops,
                         force=args.force)
    print(f"plan: {loaded.path} ({'built' if loaded.built else 'from cache'}; profile {profile.describe()})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    directory = cache.cache_dir(args.out)
    found = cache.entries(directory)
    print(f"engine cache: {directory}" + ("" if found else " (empty)"))
    for path, info in found:
        mib = path.stat().st_size / 2**20
        desc = f"{info.get('model', '?')} {info.get('precision', '?')}"
        if path.suffix == ".plan":
            desc += (f" profile {info.get('profile', '?')} TensorRT {info.get('trt_version', '?')} "
                     f"{info.get('gpu', '?')} sm{info.get('compute_capability', '?')}")
        if info.get("sha256") and info["sha256"] != cache.sha256_file(path):
            desc += "  [does not match its record: will be rebuilt]"
        print(f"  {path.name:44} {mib:8.1f} MiB  {desc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import ALL, bench_one, format_row

    labels = list(ALL) if args.backend == "all" else [args.backend]
    options: dict[str, object] = {}  # backends ignore options that are not theirs
    if args.threads:
        options["threads"] = args.threads
    rows = []
    for label in labels:
        row = bench_one(label, args.model, args.size, args.streams, args.precision, args.seconds,
                        args.min_iters, options)
        rows.append(row)
        print(format_row(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": rows}, indent=2))
    return 0


def machine() -> dict[str, object]:
    import os
    import platform

    import torch

    info: dict[str, object] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                               "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def parser() -> argparse.ArgumentParser:
    from models import model_names

    ap = argparse.ArgumentParser(prog="python -m engines", description="Build, benchmark and list denoiser engines.")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="more log messages (-vv: debug)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="export ONNX, validate it, build a TensorRT plan")
    b.add_argument("--model", default="base", help=f"one of {', '.join(model_names())}")
    b.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"],
                   help="int8: an ONNX Runtime CPU graph (with --onnx-only)")
    b.add_argument("--min", type=_size, default=(128, 128), help="WxH (default 128x128)")
    b.add_argument("--opt", type=_size, default=(1080, 1920), help="WxH (default 1920x1080)")
    b.add_argument("--max", type=_size, default=(2160, 3840), help="WxH (default 3840x2160)")
    b.add_argument("--max-batch", type=int, default=1, help="largest batch (streams) the plan takes")
    b.add_argument("--out", help=f"cache folder (default ${cache.ENV_VAR} or ~/.cache/denoise-stream/engines)")
    b.add_argument("--onnx-only", action="store_true", help="stop after the validated ONNX export")
    b.add_argument("--force", action="store_true", help="export and build again even if cached")
    b.set_defaults(func=cmd_build)
    r = sub.add_parser("bench", help="ms per frame for each available backend")
    r.add_argument("--model", default="fast")
    r.add_argument("--size", type=_size, default=(1080, 1920), help="WxH (default 1920x1080)")
    r.add_argument("--backend", default="all",
                   help="all (default), auto, torch, onnxruntime, tensorrt, or torch-cpu, "
                        "torch-cuda, onnxruntime-cpu, onnxruntime-cuda")
    r.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16", "int8"])
    r.add_argument("--streams", type=int, default=1, help="batch N streams into one call")
    r.add_argument("--seconds", type=float, default=3.0, help="time per backend")
    r.add_argument("--min-iters", type=int, default=10)
    r.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    r.add_argument("--json", help="also write the results here")
    r.set_defaults(func=cmd_bench)
    li = sub.add_parser("list", help="show the engine cache")
    li.add_argument("--out", help="cache folder")
    li.set_defaults(func=cmd_list)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # INFO by default: build and bench report their steps (-v, -vv: debug, as python -m stream)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from models import get_spec

    try:
        if getattr(args, "model", None):
            try:
                get_spec(args.model)
            except ValueError as e:
                raise EngineError(str(e)) from None
        if getattr(args, "streams", 1) < 1:
            raise EngineError(f"--streams: expected 1 or more, got {args.streams}")
        return int(args.func(args))
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

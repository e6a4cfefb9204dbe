"""One prepared GPU measurement: torch CUDA speed and accuracy for the registered models.

    python -m engines.gpu_check --json gpu_check.json [--image photo.jpg]

For each model (``fast``, ``base``) and size (1280x720, 1920x1080, 3840x2160), batch 1:
eager fp32, eager fp16 channels_last, CUDA graph fp16 and bf16, torch.compile
(max-autotune-no-cudagraphs, alone and inside a CUDA graph; in a child process with a time
budget, 2160p only when time remains), the uint8 upload/download round trip, and the
product path (``open_engine(backend="torch", device="cuda")``, uploads and downloads
included).  Then CUDA fp16/bf16/fp32 outputs against the CPU fp32 output on a real photo
(PSNR of the uint8 outputs; ``engines.gpu_accuracy``), with the shipped weights and with
seeded random weights.  Prints a table, writes JSON.  Needs only torch,
numpy, safetensors (and OpenCV for ``--image``): no PyAV, ONNX or TensorRT.

Smoke test without a GPU: ``python -m engines.gpu_check --device cpu --sizes 64x64 --json x.json``
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("engines.gpu_check")

DEFAULT_SIZES = "1280x720,1920x1080,3840x2160"
COMPILE_MODE = "max-autotune-no-cudagraphs"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"1280x720,1920x1080"`` (WxH) -> [(720, 1280), (1080, 1920)] as (H, W)."""
    from .base import parse_size

    return [(h, w) for w, h in (parse_size(s) for s in text.split(",") if s)]


def label(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_fn(fn: Callable[[], Any], dev: torch.device, seconds: float = 0.3,
            min_iters: int = 10, max_iters: int = 30, warmup: int = 3,
            wall: bool = False) -> dict[str, float]:
    """Median/p90 ms of ``fn`` (CUDA events on GPU, else wall clock) and peak memory.

    ``wall``: time on the host, for calls that run on their own streams and block.
    """
    for _ in range(warmup):
        fn()
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() < stop):
        if dev.type == "cuda" and not wall:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    med = statistics.median(times)
    return {
        "ms_median": round(med, 4), "ms_p90": round(times[int(0.9 * (len(times) - 1))], 4),
        "fps": round(1000 / med, 1), "iters": len(times),
        "peak_mib": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1) if dev.type == "cuda" else None,
    }


def make_net(model: str, dev: torch.device, dtype: torch.dtype, channels_last: bool,
             random_weights: bool = False) -> torch.nn.Module:
    from models import create_model

    if random_weights:
        torch.manual_seed(0)
    net = create_model(model, pretrained=not random_weights).to(dev, dtype).requires_grad_(False)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def inputs(hw: tuple[int, int], dev: torch.device, dtype: torch.dtype, cl: bool) -> tuple:
    h, w = hw
    x = torch.rand(1, 3, h, w, device=dev).to(dtype)
    s = torch.full((1, 1, h, w), 25 / 255, device=dev, dtype=dtype)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, s


def graphed(fn: Callable[[], Any], dev: torch.device) -> Callable[[], Any]:
    """Capture ``fn`` (static inputs) in a CUDA graph after a warm-up on a side stream."""
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(dev).wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def roundtrip(hw: tuple[int, int], dev: torch.device) -> Callable[[], Any]:
    """Pinned uint8 HWC -> device -> fp16 CHW in [0,1] -> uint8 HWC -> pinned host."""
    h, w = hw
    pin = dev.type == "cuda"
    host_in = torch.empty((1, h, w, 3), dtype=torch.uint8, pin_memory=pin)
    host_in.copy_(torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8))
    host_out = torch.empty((1, h, w, 3), dtype=torch.uint8, pin_memory=pin)
    dt = torch.float16 if pin else torch.float32

    def fn() -> None:
        d = host_in.to(dev, non_blocking=True)
        x = d.permute(0, 3, 1, 2).to(dt).div_(255)
        y = x.clamp(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
        host_out.copy_(y, non_blocking=True)

    return fn


def speed_cases(model: str, hw: tuple[int, int], dev: torch.device, budget: Callable[[], float],
                streams: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cuda = dev.type == "cuda"

    def add(variant: str, fn: Callable[[], Callable[[], Any]], frames: int = 1,
            wall: bool = False) -> None:
        row: dict[str, Any] = {"model": model, "size": label(hw), "variant": variant}
        if budget() < 5:
            row["skipped"] = "out of time budget"
        else:
            try:
                r = time_fn(fn(), dev, wall=wall)
                if frames > 1:  # report per frame
                    r["ms_median"] = round(r["ms_median"] / frames, 4)
                    r["ms_p90"] = round(r["ms_p90"] / frames, 4)
                    r["fps"] = round(r["fps"] * frames, 1)
                row.update(r)
            except Exception as e:  # keep measuring the rest; the JSON says what failed
                log.exception("%s %s %s failed", model, label(hw), variant)
                row["error"] = f"{type(e).__name__}: {e}"[:300]
        rows.append(row)
        log.info("%s", row)

    def eager(dtype: torch.dtype, cl: bool) -> Callable[[], Any]:
        net = make_net(model, dev, dtype, cl)
        x, s = inputs(hw, dev, dtype, cl)
        return lambda: net(x, s)

    def graph(dtype: torch.dtype) -> Callable[[], Any]:
        return graphed(eager(dtype, True), dev)

    def engine(batch: int, pipelined: bool) -> Callable[[], Any]:
        from . import open_engine

        eng = open_engine(model, backend="torch", device=str(dev),
                          precision="fp16" if cuda else "fp32")
        frames = np.random.default_rng(0).integers(0, 256, (batch, *hw, 3), dtype=np.uint8)
        sig = np.full((batch,), 25.0, np.float32)
        if not pipelined:
            return lambda: eng.infer(frames, sig)
        state: dict[str, Any] = {}

        def step() -> None:  # submit N+1 before collecting N: copies overlap compute
            p = eng.submit(frames, sig)
            if "p" in state:
                state["p"].result()
            state["p"] = p

        return step

    with torch.inference_mode():
        add("eager fp32", lambda: eager(torch.float32, False))
        add("eager fp16 channels_last" if cuda else "eager fp32 channels_last",
            lambda: eager(torch.float16 if cuda else torch.float32, True))
        if cuda:
            add("cuda graph fp16", lambda: graph(torch.float16))
            add("cuda graph bf16", lambda: graph(torch.bfloat16))
        add("uint8 upload+download only", lambda: roundtrip(hw, dev))
    # The product path runs its own inference_mode and streams; time it from the host side.
    add("engine infer (incl. copies)", lambda: engine(1, False), wall=True)
    if cuda:
        add("engine pipelined (incl. copies)", lambda: engine(1, True), wall=True)
        if streams > 1:
            add(f"engine pipelined batch {streams} (per frame)", lambda: engine(streams, True),
                frames=streams, wall=True)
    return rows


def compile_child(args: argparse.Namespace) -> int:
    """Runs in a child process so the parent can kill it when the time budget runs out."""
    dev = torch.device(args.device)
    out = Path(args.compile_child)
    deadline = args.deadline
    sizes = sorted(parse_sizes(args.sizes), key=lambda s: (s[0] * s[1] > 1920 * 1088, s != (1080, 1920)))
    for hw in sizes:
        for model in sorted(args.models.split(","), key=lambda m: m != "base"):  # base needs it most
            left = deadline - time.time()
            # rough compile times on an H100; a compile cannot be stopped half way
            need = {"fast": 30, "base": 50}.get(model, 50) * (1.6 if hw[0] * hw[1] > 1920 * 1088 else 1)
            row: dict[str, Any] = {"model": model, "size": label(hw),
                                   "variant": f"torch.compile {'fp16' if dev.type == 'cuda' else 'fp32'} channels_last"}
            if left < need:
                row["skipped"] = f"compile needs about {need} s, {left:.0f} s left"
                _append(out, row)
                continue
            try:
                dtype = torch.float16 if dev.type == "cuda" else torch.float32
                with torch.inference_mode():
                    net = make_net(model, dev, dtype, True)
                    x, s = inputs(hw, dev, dtype, True)
                    cnet = torch.compile(net, mode=COMPILE_MODE, dynamic=False)
                    t = time.perf_counter()
                    cnet(x, s)
                    sync(dev)
                    row["compile_s"] = round(time.perf_counter() - t, 1)
                    step = (lambda f=cnet, a=x, b=s: f(a, b))
                    row.update(time_fn(step, dev))
                    _append(out, row)
                    if dev.type == "cuda":
                        g = {"model": model, "size": label(hw), "variant": "torch.compile + cuda graph fp16"}
                        g.update(time_fn(graphed(step, dev), dev))
                        _append(out, g)
            except Exception as e:  # noqa: BLE001 - recorded in the JSON, the run goes on
                row["error"] = f"{type(e).__name__}: {e}"[:300]
                _append(out, row)
    return 0


def _append(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr, flush=True)


def run_compile(args: argparse.Namespace, deadline: float) -> list[dict[str, Any]]:
    tmp = Path(args.json).with_suffix(".compile.jsonl")
    tmp.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "engines.gpu_check", "--compile-child", str(tmp), "--device",
           args.device, "--sizes", args.sizes, "--models", args.models, "--deadline", str(deadline)]
    rows: list[dict[str, Any]] = []
    try:
        subprocess.run(cmd, timeout=max(1.0, deadline - time.time() + 5), check=False)
    except subprocess.TimeoutExpired:
        rows.append({"variant": "torch.compile", "error": "killed at the time budget"})
    if tmp.exists():
        rows = [json.loads(line) for line in tmp.read_text().splitlines() if line] + rows
        tmp.unlink()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'model':6} {'size':>9}  {'variant':42} {'median ms':>9} {'p90 ms':>8} {'fps':>8}  note"]
    for r in rows:
        note = r.get("error") or r.get("skipped") or (f"compile {r['compile_s']} s" if "compile_s" in r else "")
        if r.get("peak_mib"):
            note = (note + f" peak {r['peak_mib']} MiB").strip()
        lines.append(f"{r.get('model', ''):6} {r.get('size', ''):>9}  {r.get('variant', ''):42} "
                     f"{r.get('ms_median', ''):>9} {r.get('ms_p90', ''):>8} {r.get('fps', ''):>8}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engines.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write results here (required)")
    ap.add_argument("--image", help="a real photo for the accuracy check (else synthetic)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="fast,base")
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--streams", type=int, default=4, help="batch for the streams-per-GPU figure")
    ap.add_argument("--budget-s", "--budget", type=float, default=170.0, help="whole run, seconds")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-child", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.compile_child:
        return compile_child(args)
    if not args.json:
        ap.error("--json is required")
    start = time.time()
    deadline = start + args.budget_s
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print(f"error: no CUDA device (torch {torch.__version__})", file=sys.stderr)
        return 2
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    models = args.models.split(",")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "python": sys.version.split()[0], "speed": [], "accuracy": [],
    }

    def save() -> None:
        report["elapsed_s"] = round(time.time() - start, 1)
        Path(args.json).write_text(json.dumps(report, indent=2))

    from .gpu_accuracy import accuracy, load_photo

    photo, report["photo"] = load_photo(args.image)
    report["accuracy"] = accuracy(models, dev, photo)
    save()
    # Leave the compile child most of what is left after the eager/graph measurements; one
    # max-autotune compile of `base` at 1080p took about 52 s on an H100.
    compile_s = 0.0 if args.no_compile else min(100.0, 0.55 * args.budget_s)
    if compile_s and compile_s < 55:
        report["speed"].append({"variant": "torch.compile", "skipped":
                                f"budget {args.budget_s:.0f} s too small; use --budget-s 150 or more"})
        compile_s = 0.0
    speed_deadline = deadline - compile_s
    # 1080p first: it is the size the targets are set for, and the budget may run out.
    sizes = sorted(parse_sizes(args.sizes), key=lambda s: s != (1080, 1920))
    for hw in sizes:
        for model in models:
            report["speed"] += speed_cases(model, hw, dev, lambda: speed_deadline - time.time(), args.streams)
            save()
    if compile_s:
        report["speed"] += run_compile(args, deadline - 3)
    save()
    print(f"device: {report['device']}  torch {report['torch']}  photo: {report['photo']}")
    print(table(report["speed"]))
    print("\naccuracy (uint8 outputs through open_engine/torch, sigma 25 noisy photo):")
    for r in report["accuracy"]:
        print(f"  {r['model']:6} {r['weights']:8} {r['precision']:5} on {r['device']}: "
              + (r.get("error") or f"{r['psnr_vs_cpu_fp32_db']} dB vs CPU fp32, max diff {r['max_abs_diff_uint8']}"))
    print(f"\nwrote {args.json} in {report['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m engines bench``: ms per frame through ``open_engine``, copies included.

Each call is ``engine.infer`` on (streams, H, W, 3) uint8 frames, so host<->device copies,
padding and uint8 conversion are inside the number.  ``--streams N`` batches N streams into
one call (the streams-per-device figure); ms/frame = call time / N.
"""
from __future__ import annotations

import logging
import os
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from . import open_engine
from .base import EngineError

log = logging.getLogger("engines.bench")

ALL = ("tensorrt", "torch-cuda", "onnxruntime-cuda", "onnxruntime-cpu", "torch-cpu")


def split_label(label: str) -> tuple[str, str]:
    """'torch-cuda' -> ('torch', 'cuda'); 'tensorrt' -> ('tensorrt', 'cuda'); 'auto' -> auto."""
    if label == "auto":
        return "auto", "auto"
    if label == "tensorrt":
        return "tensorrt", "cuda"
    if "-" in label:
        b, d = label.rsplit("-", 1)
        return b, d
    return label, "auto"


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024 if sys.platform != "darwin" else kib / 2**20, 1)


def bench_one(label: str, model: str, hw: tuple[int, int], streams: int, precision: str,
              seconds: float, min_iters: int, options: dict[str, Any]) -> dict[str, Any]:
    backend, device = split_label(label)
    row: dict[str, Any] = {"backend": label, "model": model, "size": f"{hw[1]}x{hw[0]}", "streams": streams}
    try:
        eng = open_engine(model, backend=backend, device=device, precision=precision, **options)
    except EngineError as e:
        row["skipped"] = str(e)
        return row
    with eng:
        row.update(backend=eng.name, precision=eng.precision)
        try:
            _measure(eng, row, hw, streams, seconds, min_iters)
        except EngineError as e:  # e.g. a size outside a TensorRT plan's profile
            row["skipped"] = str(e)
    return row


def _measure(eng: Any, row: dict[str, Any], hw: tuple[int, int], streams: int, seconds: float,
             min_iters: int) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (streams, *hw, 3), dtype=np.uint8)
    sigma = np.full((streams,), 15.0, np.float32)
    cuda = "cuda" in eng.name or eng.name == "tensorrt"
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # warm-up: allocations, graphs, autotuning
        eng.infer(frames, sigma)
    times = []
    cpu0 = time.process_time()
    stop = time.perf_counter() + seconds
    while len(times) < min_iters or time.perf_counter() < stop:
        t = time.perf_counter()
        eng.infer(frames, sigma)
        times.append((time.perf_counter() - t) * 1000 / streams)
    # CPU seconds of this process per frame: what the frame costs when the cores are shared
    cpu_ms = (time.process_time() - cpu0) * 1000 / (len(times) * streams)
    times.sort()
    med = statistics.median(times)
    row.update(
        ms_median=round(med, 3), ms_p90=round(times[int(0.9 * (len(times) - 1))], 3),
        fps=round(1000 / med, 1), iters=len(times), cpu_ms_per_frame=round(cpu_ms, 2),
        load_avg_1min=_loadavg(), peak_rss_mib=peak_rss_mib(),
    )
    if cuda:
        import torch

        row["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if hasattr(eng, "submit") and cuda:  # overlapped: submit N+1 before collecting N
        pend = eng.submit(frames, sigma)
        t = time.perf_counter()
        n = max(min_iters, len(times))
        for _ in range(n):
            nxt = eng.submit(frames, sigma)
            pend.result()
            pend = nxt
        pend.result()
        row["pipelined_ms_per_frame"] = round((time.perf_counter() - t) * 1000 / (n * streams), 3)


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def format_row(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"{r['backend']:17} skipped: {r['skipped']}"
    extra = f"  CPU {r['cpu_ms_per_frame']:.1f} ms/frame, peak RSS {r['peak_rss_mib']} MiB"
    if r.get("load_avg_1min") is not None:
        extra += f", load {r['load_avg_1min']}"
    if "peak_cuda_mib" in r:
        extra += f", CUDA {r['peak_cuda_mib']} MiB"
    if "pipelined_ms_per_frame" in r:
        extra += f", pipelined {r['pipelined_ms_per_frame']} ms/frame"
    return (f"{r['backend']:17} {r['precision']:5} {r['model']} {r['size']} x{r['streams']}: "
            f"median {r['ms_median']:.2f} ms/frame, p90 {r['ms_p90']:.2f}, {r['fps']:.1f} fps{extra}")

"""PyTorch model -> ONNX with dynamic batch, height and width; and checking it against PyTorch.

The graph takes inputs already padded to the network's ``multiple`` (16 for ``fast``, 8 for
``base``): the engines pad (replicate, like the model itself) and crop outside the graph,
which keeps the graph free of data-dependent padding and every dimension a clean multiple
for TensorRT's optimization profiles.

fp16 graphs are typed: weights, inputs and outputs are float16 in the graph itself (TensorRT
11 networks are strongly typed; there is no FP16 builder flag any more).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import cache

log = logging.getLogger("engines.export")

ONNX_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
NP_DTYPES = {"fp32": np.float32, "fp16": np.float16}
MAX_SIDE = 8192


def input_names(temporal: bool) -> list[str]:
    return ["x", "sigma"] + (["prev"] if temporal else [])


def export_onnx(
    model: str,
    precision: str,
    out: Path,
    weights: str | Path | None = None,
    net: torch.nn.Module | None = None,
) -> Path:
    """Export ``model`` (or the given ``net``) to ``out`` as an ONNX file; returns ``out``."""
    from models import create_model, get_spec

    if precision not in ONNX_DTYPES:
        raise ValueError(f"ONNX export supports {', '.join(ONNX_DTYPES)}, got {precision!r}")
    temporal = get_spec(model).temporal
    net = copy.deepcopy(net) if net is not None else create_model(model, weights=weights)
    net = net.eval().requires_grad_(False).to("cpu", ONNX_DTYPES[precision])
    m = int(net.multiple)
    dt = ONNX_DTYPES[precision]
    b = torch.export.Dim("batch", min=1, max=64)
    h = torch.export.Dim("hq", min=1, max=MAX_SIDE // m) * m
    w = torch.export.Dim("wq", min=1, max=MAX_SIDE // m) * m
    args: tuple[torch.Tensor, ...] = (
        torch.rand(2, 3, 4 * m, 6 * m, dtype=dt),
        torch.full((2, 1, 4 * m, 6 * m), 0.1, dtype=dt),
    )
    dyn: dict[str, Any] = {"x": {0: b, 2: h, 3: w}, "sigma": {0: b, 2: h, 3: w}}
    if temporal:
        args += (torch.rand(2, 3, 4 * m, 6 * m, dtype=dt),)
        dyn["prev"] = {0: b, 2: h, 3: w}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: several processes may export the same file at once.
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        with torch.no_grad(), _quiet():
            prog = torch.onnx.export(
                net, args, dynamo=True, input_names=input_names(temporal), output_names=["y"],
                dynamic_shapes=dyn, optimize=True, verbose=False,
            )
        prog.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    cache.write_sidecar(out, {
        "kind": "onnx", "model": model, "precision": precision, "multiple": m,
        "temporal": temporal, "inputs": input_names(temporal), "torch": torch.__version__,
        "sha256": cache.sha256_file(out),
    })
    log.info("exported %s (%s) to %s", model, precision, out)
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter logs every rewrite pass at INFO and warns about axis names; keep it down."""
    loggers = [logging.getLogger(n) for n in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def weights_sha256(model: str, weights: str | Path | None = None) -> str:
    from models import weights_path

    path = Path(weights) if weights is not None else weights_path(model)
    return cache.sha256_file(path) if path.exists() else "random"


def ensure_onnx(
    model: str, precision: str, directory: Path | None = None, weights: str | Path | None = None
) -> Path:
    """The cached ONNX export of ``model`` with these weights, exporting it when missing."""
    directory = cache.cache_dir(directory)
    path = directory / cache.onnx_filename(model, precision, weights_sha256(model, weights))
    info = cache.read_sidecar(path)
    if path.exists() and info.get("sha256") == cache.sha256_file(path):
        return path
    if path.exists():
        log.warning("ONNX file %s does not match its record; exporting it again", path)
    else:
        log.info("exporting %s (%s) to ONNX once; cached in %s", model, precision, directory)
    return export_onnx(model, precision, path, weights=weights)


def pad_nchw(a: np.ndarray, m: int) -> np.ndarray:
    """Replicate-pad the last two axes up to a multiple of ``m`` (as the model does)."""
    ph, pw = -a.shape[-2] % m, -a.shape[-1] % m
    if not (ph or pw):
        return a
    return np.pad(a, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A (H, W, 3) float32 image in [0, 1]: smooth shapes plus noise (no data files needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        0.5 + 0.4 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0 - c) for c in range(3)
    ], axis=-1)
    return np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1).astype(np.float32)


def validate(
    onnx_path: Path,
    model: str,
    precision: str,
    sizes: list[tuple[int, int]],
    weights: str | Path | None = None,
    net: torch.nn.Module | None = None,
    sigma255: float = 25.0,
) -> list[dict[str, float]]:
    """Run the ONNX graph in ONNX Runtime and the fp32 PyTorch model on the same inputs.

    Returns, per (H, W): max abs error and PSNR (dB, signals in [0, 1]) between the outputs.
    """
    from models import create_model, get_spec

    from .onnxruntime_backend import make_session

    temporal = get_spec(model).temporal
    ref_net = net if net is not None else create_model(model, weights=weights)
    ref_net = ref_net.eval().float()
    m = int(ref_net.multiple)
    sess = make_session(onnx_path)
    dt = NP_DTYPES[precision]
    rows = []
    for i, (h, w) in enumerate(sizes):
        x = synthetic_image(h, w, seed=i).transpose(2, 0, 1)[None]  # (1, 3, H, W)
        s = np.full((1, 1, h, w), sigma255 / 255, np.float32)
        feeds = {"x": x, "sigma": s}
        if temporal:
            feeds["prev"] = synthetic_image(h, w, seed=100 + i).transpose(2, 0, 1)[None]
        with torch.no_grad():
            ref = ref_net(*(torch.from_numpy(v) for v in feeds.values())).numpy()
        got = sess.run(None, {k: pad_nchw(v, m).astype(dt) for k, v in feeds.items()})[0]
        got = got[..., :h, :w].astype(np.float32)
        rows.append({
            "height": h, "width": w,
            "max_abs_err": float(np.abs(got - ref).max()),
            "psnr_db": psnr(np.clip(got, 0, 1), np.clip(ref, 0, 1)),
        })
    return rows

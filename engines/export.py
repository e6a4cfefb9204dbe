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
from torch import nn

from . import cache

log = logging.getLogger("engines.export")

ONNX_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
# the graphs' input types (an int8 graph takes and returns float32; engines/quantize.py)
NP_DTYPES = {"fp32": np.float32, "fp16": np.float16, "int8": np.float32}
MAX_SIDE = 8192


class FoldedStem(nn.Module):
    """The network as exported: its input stage folded into strided convolutions.

    The model's stem is pixel-unshuffle(x) ++ avg-pool(sigma) [++ pixel-unshuffle(prev)] ->
    head conv (k x k on the r-times smaller grid).  The same arithmetic is one conv per
    input on the full-resolution tensor with a (k*r) x (k*r) kernel, stride r and padding
    (k//2)*r.  ONNX Runtime runs the 6-D transpose of pixel-unshuffle slowly (the folded graph
    is about 15% faster for ``fast`` on 2 CPU cores); TensorRT does not mind either way.
    ``fold_stem`` checks the result against the model and keeps the model when they differ.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        r, head = net.cfg.unshuffle, net.head
        k = head.kernel_size[0]
        weight = head.weight.detach().float()  # (O, 3r² + 1 [+ 3r²], k, k)
        n = 3 * r * r

        def conv(w_cells: torch.Tensor, bias: bool) -> nn.Conv2d:
            o, c = w_cells.shape[0], w_cells.shape[1] // (r * r)
            c_ = nn.Conv2d(c, o, k * r, stride=r, padding=(k // 2) * r, bias=bias)
            # cell channel c*r*r + a*r + b at tap (ky, kx) -> pixel tap (ky*r + a, kx*r + b)
            w = w_cells.reshape(o, c, r, r, k, k).permute(0, 1, 4, 2, 5, 3).reshape(o, c, k * r, k * r)
            with torch.no_grad():
                c_.weight.copy_(w)
                if bias:
                    c_.bias.copy_(head.bias.detach())
            return c_

        self.x_conv = conv(weight[:, :n], True)
        # avg-pool then a 1-channel tap = every pixel of the cell with weight / r²
        self.s_conv = conv(weight[:, n:n + 1].repeat(1, r * r, 1, 1) / (r * r), False)
        self.p_conv = conv(weight[:, n + 1:], False) if net.cfg.temporal else None

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        # inputs already padded to net.multiple: (B, 3, H, W), (B, 1, H, W), (B, 3, H, W)
        net = self.net
        y = self.x_conv(x) + self.s_conv(sigma)  # (B, w0, H/r, W/r)
        if self.p_conv is not None:
            y = y + self.p_conv(x if prev is None else prev)
        return net.output(x, net.trunk(y))


def fold_stem(net: nn.Module) -> nn.Module:
    """``FoldedStem(net)`` when it reproduces ``net`` (fp32, random input), else ``net``."""
    try:
        folded = FoldedStem(net).eval()
        m = int(net.multiple)
        gen = torch.Generator().manual_seed(0)
        args = [torch.rand(1, 3, 2 * m, 3 * m, generator=gen), torch.rand(1, 1, 2 * m, 3 * m, generator=gen) * 0.2]
        if net.cfg.temporal:
            args.append(torch.rand(1, 3, 2 * m, 3 * m, generator=gen))
        with torch.no_grad():
            err = (folded(*args) - net(*args)).abs().max().item()
    except (AttributeError, RuntimeError, TypeError, ValueError) as e:
        log.info("exporting the model as is (stem not folded: %s)", e)
        return net
    if err > 1e-4:
        log.warning("folded stem differs from the model by %.2g; exporting the model as is", err)
        return net
    return folded


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
    m = int(net.multiple)
    net = fold_stem(net.eval().float())
    net = net.eval().requires_grad_(False).to("cpu", ONNX_DTYPES[precision])
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
        "stem": "folded" if isinstance(net, FoldedStem) else "as is", "format": cache.EXPORT_FORMAT,
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


def onnx_path_for(model: str, precision: str, directory: Path, weights: str | Path | None = None) -> Path:
    """Where the export of these weights and this architecture lives in ``directory``."""
    from models import get_spec

    # The architecture's config too: a changed model with the same weights file is a new graph;
    # and for int8, how it was quantized.
    parts = [weights_sha256(model, weights), repr(get_spec(model).config)]
    if precision == "int8":
        from .quantize import recipe

        parts.append(recipe())
    source = cache.sha256_json(parts)
    return directory / cache.onnx_filename(model, precision, source)


def ensure_onnx(
    model: str, precision: str, directory: Path | None = None, weights: str | Path | None = None
) -> Path:
    """The cached ONNX export of ``model`` with these weights, exporting it when missing."""
    directory = cache.cache_dir(directory)
    path = onnx_path_for(model, precision, directory, weights)
    info = cache.read_sidecar(path)
    if path.exists() and info.get("sha256") == cache.sha256_file(path):
        return path
    if path.exists():
        log.warning("ONNX file %s does not match its record; exporting it again", path)
    else:
        log.info("exporting %s (%s) to ONNX once; cached in %s", model, precision, directory)
    if precision == "int8":  # from the fp32 export, quantized (engines/quantize.py)
        return quantize_cached(model, ensure_onnx(model, "fp32", directory, weights), path)
    return export_onnx(model, precision, path, weights=weights)


def quantize_cached(model: str, fp32: Path, out: Path) -> Path:
    """The int8 graph of the fp32 export ``fp32`` at ``out``, with its sidecar."""
    from models import get_spec

    from .quantize import quantize_onnx

    info = cache.read_sidecar(fp32)
    multiple = int(info.get("multiple") or 16)
    quantize_onnx(fp32, out, multiple, temporal=get_spec(model).temporal)
    cache.write_sidecar(out, {**info, "precision": "int8", "from": fp32.name, "sha256": cache.sha256_file(out)})
    return out

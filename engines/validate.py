"""Checks that an exported graph computes what the PyTorch model does (``python -m engines
build`` runs ``validate`` after every export), and the synthetic picture they use."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.metrics import psnr

from .export import NP_DTYPES
from .onnxruntime_backend import make_session


def pad_nchw(a: np.ndarray, m: int) -> np.ndarray:
    """Replicate-pad the last two axes up to a multiple of ``m`` (as the model does)."""
    ph, pw = -a.shape[-2] % m, -a.shape[-1] % m
    if not (ph or pw):
        return a
    return np.pad(a, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")


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

"""ONNX Runtime: CPU, and the CUDA / TensorRT execution providers where the installed
onnxruntime package has them.  The ONNX graph comes from the export cache (see export.py).
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendUnavailable, Engine, EngineError

log = logging.getLogger("engines.onnxruntime")

CUDA_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
THREADS_ENV = "DENOISE_STREAM_ORT_THREADS"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailable(f"onnxruntime is not installed (pip install '.[onnx]'): {e}") from e
    return onnxruntime


def probe(device: str) -> None:
    ort = _ort()
    if device.startswith("cuda"):
        have = ort.get_available_providers()
        if not set(CUDA_PROVIDERS) & set(have):
            raise BackendUnavailable(
                f"onnxruntime {ort.__version__} has no CUDA execution provider "
                f"(has {', '.join(have)}; install onnxruntime-gpu)"
            )


def make_session(path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """An InferenceSession with all graph optimizations; ``threads`` = intra-op threads."""
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads is None and os.environ.get(THREADS_ENV):
        threads = int(os.environ[THREADS_ENV])
    if threads:
        so.intra_op_num_threads = threads
    # Spinning worker threads burn the cores that decoding, encoding and other programs need:
    # on 2 busy cores fast@640x360 took 105 ms with spinning, 65 ms without (58 ms, 1 thread).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        idx = int(device.split(":")[1]) if ":" in device else 0
        have = ort.get_available_providers()
        providers = [(p, {"device_id": idx}) for p in CUDA_PROVIDERS if p in have] + providers
    return ort.InferenceSession(str(path), so, providers=providers)


class OnnxRuntimeEngine(Engine):
    def __init__(
        self,
        model: str,
        device: str = "cpu",
        precision: str = "auto",
        weights: str | Path | None = None,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        onnx_path: str | Path | None = None,
        net: Any = None,
        **_: Any,
    ) -> None:
        from models import get_spec

        from .export import ensure_onnx, export_onnx

        probe(device)
        cuda = device.startswith("cuda")
        if precision == "auto":
            precision = "fp16" if cuda else "fp32"
        if precision not in ("fp32", "fp16"):
            raise EngineError(f"onnxruntime runs fp32 or fp16 graphs, not {precision}")
        super().__init__(model, get_spec(model).temporal, device, precision)
        self.name = "onnxruntime-cuda" if cuda else "onnxruntime-cpu"
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if onnx_path is None and net is not None:  # an in-memory model (tests): export privately
            self._tmp = tempfile.TemporaryDirectory(prefix="engines-")
            onnx_path = export_onnx(model, precision, Path(self._tmp.name) / "m.onnx", net=net)
        elif onnx_path is None:
            try:
                onnx_path = ensure_onnx(model, precision, Path(cache_dir) if cache_dir else None, weights)
            except ImportError as e:  # the exporter needs onnx + onnxscript (the [onnx] extra)
                raise BackendUnavailable(f"ONNX export needs {e.name or e} (pip install '.[onnx]')") from e
        self.onnx_path = Path(onnx_path)
        self.session = make_session(self.onnx_path, device, threads)
        meta = {i.name: i for i in self.session.get_inputs()}
        self.dtype = np.float16 if meta["x"].type == "tensor(float16)" else np.float32
        from .cache import read_sidecar

        self.multiple = int(read_sidecar(self.onnx_path).get("multiple") or _multiple(model))
        log.info("%s: %s with %s", self.name, self.onnx_path.name, self.session.get_providers()[0])

    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        b, h, w, _ = frames.shape
        m = self.multiple
        ph, pw = -h % m, -w % m
        feeds = {"x": self._to_input(frames, ph, pw)}
        hp, wp = h + ph, w + pw
        if sigma.ndim == 1:
            s = np.empty((b, 1, hp, wp), self.dtype)
            s[:] = (sigma / 255).astype(self.dtype)[:, None, None, None]
        else:
            s = np.pad(sigma, ((0, 0), (0, ph), (0, pw)), mode="edge")[:, None] / np.float32(255)
            s = s.astype(self.dtype, copy=False)
        feeds["sigma"] = s
        if self.temporal:
            feeds["prev"] = self._to_input(prev if prev is not None else frames, ph, pw)
        y = self.session.run(["y"], feeds)[0][..., :h, :w].astype(np.float32, copy=False)
        # Same float32 steps as torch_backend.to_output, so equal outputs round equally.
        y = np.clip(y, 0, 1)
        y *= 255
        return np.rint(y, out=y).astype(np.uint8).transpose(0, 2, 3, 1).copy()

    def _to_input(self, u8: np.ndarray, ph: int, pw: int) -> np.ndarray:
        if ph or pw:
            u8 = np.pad(u8, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        x = u8.transpose(0, 3, 1, 2).astype(self.dtype, order="C")  # (B, 3, H, W)
        x /= self.dtype(255)
        return x

    def close(self) -> None:
        self.session = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()


def _multiple(model: str) -> int:
    from models import create_model

    return int(create_model(model, pretrained=False).multiple)


ENGINE = OnnxRuntimeEngine

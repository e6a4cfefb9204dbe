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
    if threads is None:
        # Half the cores: the rest decode, encode and draw.  On the 2-core dev machine, busy
        # with other work, 1 thread ran fast@640x360 in 58 ms and 2 threads in 65 ms.
        threads = max(1, (os.cpu_count() or 2) // 2)
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
    ) -> None:
        from models import get_spec

        from .export import ensure_onnx, export_onnx

        probe(device)
        cuda = device.startswith("cuda")
        if precision == "auto":
            precision = "fp16" if cuda else "fp32"
        if precision not in ("fp32", "fp16", "int8"):
            raise EngineError(f"onnxruntime runs fp32, fp16 or int8 graphs, not {precision}")
        if precision == "int8" and cuda:
            raise EngineError("int8 graphs run on the CPU (onnxruntime-cpu); use --precision fp16 on CUDA")
        super().__init__(model, get_spec(model).temporal, device, precision)
        self.name = "onnxruntime-cuda" if cuda else "onnxruntime-cpu"
        self.takes_float = True  # frames are converted on the host (``_fill``)
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
        self._buf: dict[str, np.ndarray] = {}
        self._buf_key: tuple[int, int, int] | None = None
        self._sigma_key: tuple[float, ...] | None = None
        log.info("%s: %s with %s", self.name, self.onnx_path.name, self.session.get_providers()[0])

    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        b, h, w, _ = frames.shape
        buf = self._buffers(b, h, w)
        self._fill(buf["x"], frames, h, w)
        s = buf["sigma"]
        if sigma.ndim == 1:
            key = tuple(sigma.tolist())
            if key != self._sigma_key:  # a constant map: refill only when the level changes
                s[:] = (sigma / 255).astype(self.dtype)[:, None, None, None]
                self._sigma_key = key
        else:
            np.divide(sigma[:, None], np.float32(255), out=s[:, :, :h, :w], dtype=self.dtype)
            _replicate_pad(s, h, w)
            self._sigma_key = None
        feeds = {"x": buf["x"], "sigma": s}
        if self.temporal:
            self._fill(buf["prev"], prev if prev is not None else frames, h, w)
            feeds["prev"] = buf["prev"]
        if self.device.startswith("cuda"):
            y = self.session.run(["y"], feeds)[0]
        else:  # into a buffer of ours: ORT's fresh output array cost page faults every frame
            io = self.session.io_binding()
            for name, arr in feeds.items():
                io.bind_cpu_input(name, arr)
            y = buf["y"]
            io.bind_output("y", "cpu", 0, y.dtype, y.shape, y.ctypes.data)
            self.session.run_with_iobinding(io)
        return to_uint8(y, h, w, buf)

    def _buffers(self, b: int, h: int, w: int) -> dict[str, np.ndarray]:
        """Input/scratch arrays reused while the size stays the same: fresh multi-megabyte
        arrays every frame cost page faults (about 5 ms a 640x360 frame on the dev VM; at
        720p the output's arrays alone cost 12 ms a frame before they were reused)."""
        if self._buf_key != (b, h, w):
            m = self.multiple
            hp, wp = h + -h % m, w + -w % m
            self._buf = {
                "x": np.empty((b, 3, hp, wp), self.dtype),
                "sigma": np.empty((b, 1, hp, wp), self.dtype),
                "y": np.empty((b, 3, hp, wp), self.dtype),
                "planes": np.empty((3, h, w), np.float32),
                "bytes": np.empty((3, h, w), np.uint8),
            }
            if self.temporal:
                self._buf["prev"] = np.empty((b, 3, hp, wp), self.dtype)
            self._buf_key, self._sigma_key = (b, h, w), None
        return self._buf

    def _fill(self, dst: np.ndarray, u8: np.ndarray, h: int, w: int) -> None:
        """(B, H, W, 3) uint8 -> dst (B, 3, Hp, Wp) in [0, 1], replicate-padded: OpenCV
        splits the channels (uint8), then one contiguous divide per plane (1.45 against 1.85
        ms a 720p frame for one strided divide; the same values)."""
        import cv2

        planes = list(self._buf["bytes"])
        for i in range(u8.shape[0]):
            cv2.split(np.ascontiguousarray(u8[i]), planes)
            for c in range(3):
                np.divide(planes[c], self.dtype(255), out=dst[i, c, :h, :w], dtype=self.dtype)
        _replicate_pad(dst, h, w)

    def close(self) -> None:
        self.session = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()


def to_uint8(y: np.ndarray, h: int, w: int, scratch: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, 3, Hp, Wp) float output in 0..1 -> (B, h, w, 3) uint8, rounded to nearest (half to
    even) and saturated: the values of torch_backend.to_output (clip, x 255, rint): per frame
    one float pass (max with 0), OpenCV's saturating convert per plane and a merge of the
    uint8 planes (2.6 ms a 720p frame; numpy's four passes took 5.0, a float merge 3.6).
    ``scratch``: reused "planes" (3, h, w) float32 and "bytes" (3, h, w) uint8 arrays."""
    import cv2

    if scratch is None or scratch["planes"].shape != (3, h, w):
        scratch = {"planes": np.empty((3, h, w), np.float32), "bytes": np.empty((3, h, w), np.uint8)}
    planes, u8 = scratch["planes"], list(scratch["bytes"])
    out = np.empty((y.shape[0], h, w, 3), np.uint8)
    for i in range(y.shape[0]):
        np.maximum(y[i, :, :h, :w], 0, out=planes, dtype=np.float32)
        for c in range(3):
            cv2.convertScaleAbs(planes[c], u8[c], alpha=255)  # |v| after max(v, 0): v
        cv2.merge(u8, out[i])
    return out


def _replicate_pad(a: np.ndarray, h: int, w: int) -> None:
    """Fill a[..., h:, :] and a[..., :, w:] with the last row/column (in place)."""
    if a.shape[-2] > h:
        a[..., h:, :w] = a[..., h - 1:h, :w]
    if a.shape[-1] > w:
        a[..., :, w:] = a[..., :, w - 1:w]


def _multiple(model: str) -> int:
    from models import create_model

    return int(create_model(model, pretrained=False).multiple)


ENGINE = OnnxRuntimeEngine

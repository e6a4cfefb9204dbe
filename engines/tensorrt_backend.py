"""TensorRT runtime (10 and 11 API): a cached plan, torch CUDA tensors in and out.

Tensor names, ``set_input_shape`` + ``set_tensor_address`` + ``execute_async_v3`` on the
engine's own (non-default) stream, one CUDA graph per resolution.  Uploads, downloads,
padding and uint8 conversion reuse the torch backend's pinned double buffers and copy stream
(``torch_backend.CudaRunner``).  ``tensorrt`` is imported only when this backend is used.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import BackendUnavailable, CroppedPending, Engine, EngineError, Pending, pad_to_min
from .cache import Profile, cache_dir, read_sidecar
from .torch_backend import CudaRunner, sigma_tensor, to_input, to_output

log = logging.getLogger("engines.tensorrt")

# The plan open_engine loads or builds by default; `python -m engines build` uses the same.
DEFAULT_PROFILE = Profile(min=(128, 128), opt=(1080, 1920), max=(2160, 3840))


def probe(device: str) -> None:
    if not device.startswith("cuda"):
        raise BackendUnavailable("TensorRT runs on NVIDIA GPUs only")
    from .build import import_tensorrt

    import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"torch {torch.__version__} sees no CUDA device")


def torch_dtype(trt: Any, dt: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    if dt not in table:
        raise EngineError(f"unsupported TensorRT I/O type {dt}")
    return table[dt]


class TensorRTEngine(Engine):
    def __init__(
        self,
        model: str,
        device: str = "cuda",
        precision: str = "auto",
        weights: str | Path | None = None,
        cache_dir: str | Path | None = None,
        profile: Profile | None = None,
        cuda_graphs: bool = True,
        onnx_path: str | Path | None = None,
    ) -> None:
        from models import get_spec

        from .build import TrtOps, ensure_plan
        from .export import ensure_onnx

        probe(device)
        precision = "fp16" if precision == "auto" else precision
        if precision not in ("fp32", "fp16"):
            raise EngineError(f"tensorrt plans are built from fp32 or fp16 graphs, not {precision}")
        super().__init__(model, get_spec(model).temporal, device, precision)
        self.name = "tensorrt"
        self.torch_device = torch.device(device)
        index = self.torch_device.index or 0
        self.profile = profile or DEFAULT_PROFILE
        directory = _cache_dir(cache_dir)
        onnx = Path(onnx_path) if onnx_path else ensure_onnx(model, precision, directory, weights)
        self.multiple = int(read_sidecar(onnx).get("multiple") or 16)
        with torch.cuda.device(index):
            ops = TrtOps(index)
            self.trt = ops.trt
            loaded = ensure_plan(model, precision, self.profile, onnx, self.multiple, directory, ops)
            self.plan_path = loaded.path
            self.engine = loaded.engine
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtype = torch_dtype(self.trt, self.engine.get_tensor_dtype("x"))
        self._buffers: dict[tuple[int, int, int], dict[str, torch.Tensor]] = {}
        self._bound: tuple[int, int, int] | None = None
        self._cuda: CudaRunner | None = CudaRunner(self, cuda_graphs)
        log.info("tensorrt: %s (profile %s)", self.plan_path.name, self.profile.describe())

    def _bind(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        """Buffers for one padded (B, H, W), and the context's shapes/addresses set to them."""
        b, h, w = key
        bufs = self._buffers.get(key)
        if bufs is None:
            bufs = {}
            for n in self.inputs:
                shape = (b, 1 if n == "sigma" else 3, h, w)
                bufs[n] = torch.empty(shape, dtype=self.dtype, device=self.torch_device)
        if self._bound != key or key not in self._buffers:
            for n in self.inputs:
                if not self.context.set_input_shape(n, tuple(bufs[n].shape)):
                    raise EngineError(f"TensorRT rejected input shape {tuple(bufs[n].shape)} for {n!r}")
            for n in self.outputs:
                if n not in bufs:
                    shape = tuple(self.context.get_tensor_shape(n))
                    dt = torch_dtype(self.trt, self.engine.get_tensor_dtype(n))
                    bufs[n] = torch.empty(shape, dtype=dt, device=self.torch_device)
            for n, t in bufs.items():
                self.context.set_tensor_address(n, t.data_ptr())
            self._buffers[key] = bufs
            self._bound = key
        return bufs

    def _padded(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        b, h, w = shape[:3]
        return b, h + -h % self.multiple, w + -w % self.multiple

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Before a captured graph of frames ``shape`` (B, H, W, 3) replays: the context may
        have been set to another size since, so bind this one again (host-side calls only)."""
        self._bind(self._padded(shape))

    def forward(self, x: torch.Tensor, sig: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """uint8 NHWC on the device in and out; runs on the current (engine) stream."""
        h, w = x.shape[1:3]
        key = self._padded(tuple(x.shape))
        ph, pw = key[1] - h, key[2] - w
        bufs = self._bind(key)

        def put(name: str, t: torch.Tensor) -> None:
            bufs[name].copy_(F.pad(t, (0, pw, 0, ph), mode="replicate") if ph or pw else t)

        put("x", to_input(x, self.dtype))
        put("sigma", sigma_tensor(sig, h, w, self.dtype))
        if "prev" in bufs:
            put("prev", to_input(prev if prev is not None else x, self.dtype))
        stream = torch.cuda.current_stream(self.torch_device).cuda_stream
        if not self.context.execute_async_v3(stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return to_output(bufs["y"][..., :h, :w])

    def _fit(
        self, frames: np.ndarray, sig: np.ndarray, prev: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[int, int] | None]:
        """Frames smaller than the profile's smallest size are edge-padded up to it (the
        output is cropped back); other sizes outside the profile are refused."""
        frames, sig, prev, crop = pad_to_min(frames, sig, prev, *self.profile.min)
        self._check(frames)
        return frames, sig, prev, crop

    def _check(self, frames: np.ndarray) -> None:
        b, h, w, _ = frames.shape
        if not self.profile.covers(b, h, w):
            raise EngineError(
                f"{w}x{h} batch {b} is outside the TensorRT profile {self.profile.describe()}; "
                f"build a plan that covers it (python -m engines build --min/--max)"
            )

    def submit(self, frames: np.ndarray, sigma: Any, prev: np.ndarray | None = None) -> Pending:
        from .base import check_inputs

        if self._cuda is None:
            raise EngineError("engine tensorrt is closed")
        frames, sig, prev = check_inputs(frames, sigma, prev, self.temporal)
        frames, sig, prev, crop = self._fit(frames, sig, prev)
        pending = self._cuda.submit(frames, sig, prev)
        return CroppedPending(inner=pending, size=crop) if crop else pending

    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        frames, sigma, prev, crop = self._fit(frames, sigma, prev)
        assert self._cuda is not None
        out = self._cuda.submit(frames, sigma, prev).result()
        return np.ascontiguousarray(out[:, :crop[0], :crop[1]]) if crop else out

    def close(self) -> None:
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
        self._buffers.clear()
        self.context = None
        self.engine = None
        super().close()


def _cache_dir(override: str | Path | None) -> Path:
    d = cache_dir(override)
    d.mkdir(parents=True, exist_ok=True)
    return d


ENGINE = TensorRTEngine

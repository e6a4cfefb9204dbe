"""PyTorch runtime: CPU (fp32) and CUDA (fp16/bf16/fp32, channels_last, a CUDA graph per
shape, optional torch.compile, pinned double buffers and a copy stream).

On CUDA, ``submit`` returns at once and ``Pending.result()`` waits, so a caller that submits
frame N+1 before collecting frame N overlaps N+1's upload and N's download with compute.
``infer`` is ``submit(...).result()``.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import BackendUnavailable, Engine, EngineError, Pending

log = logging.getLogger("engines.torch")

COMPILE_ENV = "DENOISE_STREAM_TORCH_COMPILE"  # 1: torch.compile the model (max-autotune)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def probe(device: str) -> None:
    """Raise BackendUnavailable when torch cannot run on ``device``."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = "CPU-only build" if torch.version.cuda is None else "no CUDA device visible"
        raise BackendUnavailable(f"torch {torch.__version__}: {build}")


def to_input(u8: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) in [0, 1]; the permute makes it channels_last."""
    return u8.permute(0, 3, 1, 2).to(dtype).div_(255)


def to_output(y: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float -> (B, H, W, 3) uint8, rounded to nearest."""
    return y.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)


def sigma_tensor(sig: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    """(B,) or (B, H, W) float 0..255 -> (B, 1, H, W) ``dtype`` in [0, 1] units."""
    s = sig.to(dtype).div(255)
    if s.ndim == 1:
        return s[:, None, None, None].expand(-1, 1, h, w)
    return s[:, None]


class TorchEngine(Engine):
    def __init__(
        self,
        model: str,
        device: str = "cpu",
        precision: str = "auto",
        weights: str | Path | None = None,
        compile: bool | None = None,
        cuda_graphs: bool = True,
        channels_last: bool = True,
        net: torch.nn.Module | None = None,
        threads: int | None = None,
    ) -> None:
        from models import create_model, get_spec

        probe(device)
        cuda = device.startswith("cuda")
        if precision == "auto":
            precision = "fp16" if cuda else "fp32"
        if precision not in DTYPES:
            raise EngineError(f"torch runs fp32, fp16 (CUDA) or bf16, not {precision}; "
                              "int8 runs on onnxruntime")
        if not cuda and precision == "fp16":
            raise EngineError("torch on CPU runs fp32 or bf16, not fp16; use --precision fp32")
        super().__init__(model, get_spec(model).temporal, device, precision)
        self.name = "torch-cuda" if cuda else "torch-cpu"
        self.takes_float = not cuda  # CUDA stages frames in uint8 buffers
        self._threads_before: int | None = None
        if not cuda:
            # Half the cores, as for onnxruntime: with OpenMP threads spinning on 2 busy cores,
            # fast@640x360 cost 256 ms of CPU a frame on 2 threads and 36 ms on 1.  The setting
            # is per process (changing it per call costs far more), so close() restores it.
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))
        self.dtype = DTYPES[precision]
        self.torch_device = torch.device(device)
        net = copy.deepcopy(net) if net is not None else create_model(model, weights=weights)
        net = net.eval().requires_grad_(False).to(self.torch_device, self.dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net: Any = net
        if compile is None:  # off by default: the first frame of each size then takes ~1 min
            compile = os.environ.get(COMPILE_ENV, "") not in ("", "0")
        if compile:
            # Fixed shapes per stream are the normal case; a new size recompiles once.
            self.net = torch.compile(net, mode="max-autotune-no-cudagraphs", dynamic=False)
        if cuda:
            torch.backends.cudnn.benchmark = True  # shapes stay fixed per stream
        self._cuda = CudaRunner(self, cuda_graphs) if cuda else None

    def forward(self, x: torch.Tensor, sig: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """uint8 NHWC tensors on the device in, uint8 NHWC tensor out (no host copies)."""
        h, w = x.shape[1:3]
        xin = to_input(x, self.dtype)
        p = to_input(prev, self.dtype) if prev is not None else None
        return to_output(self.net(xin, sigma_tensor(sig, h, w, self.dtype), p))

    def submit(self, frames: np.ndarray, sigma: Any, prev: np.ndarray | None = None) -> Pending:
        from .base import check_inputs

        if self.closed:
            raise EngineError(f"engine {self.name} is closed")
        frames, sig, prev = check_inputs(frames, sigma, prev, self.temporal)
        if self._cuda is not None:
            return self._cuda.submit(frames, sig, prev)
        return Pending(value=self._infer(frames, sig, prev))

    def _infer(self, frames: np.ndarray, sigma: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
        if self._cuda is not None:
            return self._cuda.submit(frames, sigma, prev).result()
        with torch.inference_mode():
            x = torch.from_numpy(frames)
            p = torch.from_numpy(prev) if prev is not None else None
            return self.forward(x, torch.from_numpy(sigma), p).contiguous().numpy()

    def close(self) -> None:
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        super().close()


@dataclass
class _Slot:
    """One of two in-flight buffers sets for a shape: pinned host memory + device staging."""

    host_in: torch.Tensor
    host_sig: torch.Tensor
    host_prev: torch.Tensor | None
    host_out: torch.Tensor
    dev_in: torch.Tensor
    dev_sig: torch.Tensor
    dev_prev: torch.Tensor | None
    dev_out: torch.Tensor
    uploaded: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    consumed: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    computed: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    done: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    pending: Pending | None = None
    used: bool = False


class _Plan:
    """Static buffers (and a CUDA graph when enabled) for one input signature."""

    def __init__(self, eng: TorchEngine, key: tuple, use_graph: bool, stream: torch.cuda.Stream) -> None:
        (b, h, w), sig_shape, has_prev = key
        dev = eng.torch_device
        self.inp = torch.zeros((b, h, w, 3), dtype=torch.uint8, device=dev)
        self.sig = torch.zeros(sig_shape, dtype=torch.float32, device=dev)
        self.prev = torch.zeros_like(self.inp) if has_prev else None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eng = eng

        def alloc(shape: tuple, dtype: torch.dtype, pin: bool) -> torch.Tensor:
            if pin:
                return torch.empty(shape, dtype=dtype, pin_memory=True)
            return torch.empty(shape, dtype=dtype, device=dev)

        self.slots = [
            _Slot(
                host_in=alloc((b, h, w, 3), torch.uint8, True),
                host_sig=alloc(sig_shape, torch.float32, True),
                host_prev=alloc((b, h, w, 3), torch.uint8, True) if has_prev else None,
                host_out=alloc((b, h, w, 3), torch.uint8, True),
                dev_in=alloc((b, h, w, 3), torch.uint8, False),
                dev_sig=alloc(sig_shape, torch.float32, False),
                dev_prev=alloc((b, h, w, 3), torch.uint8, False) if has_prev else None,
                dev_out=alloc((b, h, w, 3), torch.uint8, False),
            )
            for _ in range(2)
        ]
        self.next = 0
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):  # warm-up: cuDNN autotune, compile, lazy inits
                self.out = eng.forward(self.inp, self.sig, self.prev)
            stream.synchronize()
            if use_graph:
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph, stream=stream):
                    self.out = eng.forward(self.inp, self.sig, self.prev)
        torch.cuda.synchronize(dev)

    def run(self) -> None:
        prepare = getattr(self.eng, "prepare", None)
        if prepare is not None:  # e.g. TensorRT: put the context back on this plan's shapes
            prepare(tuple(self.inp.shape))
        if self.graph is not None:
            self.graph.replay()
        else:
            with torch.inference_mode():
                self.out = self.eng.forward(self.inp, self.sig, self.prev)


class CudaRunner:
    def __init__(self, eng: TorchEngine, use_graph: bool) -> None:
        self.eng = eng
        self.use_graph = use_graph
        self.compute = torch.cuda.Stream(eng.torch_device)
        self.copy = torch.cuda.Stream(eng.torch_device)
        self.plans: dict[tuple, _Plan] = {}

    def submit(self, frames: np.ndarray, sig: np.ndarray, prev: np.ndarray | None) -> Pending:
        key = (frames.shape[:3], sig.shape, prev is not None)
        plan = self.plans.get(key)
        if plan is None:
            log.info("torch-cuda: new shape %s; building buffers%s", key, " and CUDA graph" if self.use_graph else "")
            plan = self.plans[key] = _Plan(self.eng, key, self.use_graph, self.compute)
        s = plan.slots[plan.next]
        plan.next ^= 1
        if s.pending is not None:  # slot still owed to an uncollected result: collect it
            s.pending.result()
        if s.used:
            s.done.synchronize()  # the host buffers of this slot are free again
        s.used = True
        np.copyto(s.host_in.numpy(), frames)
        np.copyto(s.host_sig.numpy(), sig)
        if prev is not None:
            np.copyto(s.host_prev.numpy(), prev)
        with torch.cuda.stream(self.copy):
            self.copy.wait_event(s.consumed)  # the device staging of this slot is free again
            s.dev_in.copy_(s.host_in, non_blocking=True)
            s.dev_sig.copy_(s.host_sig, non_blocking=True)
            if prev is not None:
                s.dev_prev.copy_(s.host_prev, non_blocking=True)
            s.uploaded.record(self.copy)
        with torch.cuda.stream(self.compute):
            self.compute.wait_event(s.uploaded)
            plan.inp.copy_(s.dev_in)
            plan.sig.copy_(s.dev_sig)
            if prev is not None:
                plan.prev.copy_(s.dev_prev)
            s.consumed.record(self.compute)
            plan.run()
            s.dev_out.copy_(plan.out)
            s.computed.record(self.compute)
        with torch.cuda.stream(self.copy):
            self.copy.wait_event(s.computed)
            s.host_out.copy_(s.dev_out, non_blocking=True)
            s.done.record(self.copy)
        s.pending = Pending(slot=s)
        return s.pending

    def close(self) -> None:
        torch.cuda.synchronize(self.eng.torch_device)
        self.plans.clear()


ENGINE = TorchEngine

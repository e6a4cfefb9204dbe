"""TensorRT: what is testable without it, and the real thing where it is installed."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from engines import EngineError, open_engine
from engines.base import BackendUnavailable

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


def test_module_imports_without_tensorrt():
    from engines import tensorrt_backend

    assert tensorrt_backend.DEFAULT_PROFILE.covers(1, 1080, 1920)
    with pytest.raises(BackendUnavailable, match="NVIDIA GPUs only"):
        tensorrt_backend.probe("cpu")


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here")
def test_missing_tensorrt_message():
    from engines import tensorrt_backend

    with pytest.raises(BackendUnavailable, match=r"tensorrt is not installed \(pip install '\.\[tensorrt\]'"):
        tensorrt_backend.probe("cuda")


class FakeTrt:
    class DataType:
        FLOAT, HALF, BF16, INT8 = range(4)


def test_io_types_map_to_torch():
    import torch

    from engines.tensorrt_backend import torch_dtype

    assert torch_dtype(FakeTrt, FakeTrt.DataType.HALF) is torch.float16
    assert torch_dtype(FakeTrt, FakeTrt.DataType.FLOAT) is torch.float32
    with pytest.raises(EngineError, match="unsupported TensorRT I/O type"):
        torch_dtype(FakeTrt, FakeTrt.DataType.INT8)


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TRT, reason="tensorrt is not installed (needs NVIDIA's package index)")
def test_tensorrt_matches_torch(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from engine_helpers import frames

    from models.metrics import psnr

    f = frames(1, 270, 481)
    with open_engine("fast", backend="tensorrt", cache_dir=tmp_path) as t, \
            open_engine("fast", backend="torch", device="cpu") as ref:
        assert t.name == "tensorrt"
        assert psnr(t.infer(f, 25.0), ref.infer(f, 25.0), 255) >= 38
        with pytest.raises(EngineError, match="outside the TensorRT profile"):
            t.infer(np.zeros((1, 64, 64, 3), np.uint8), 10.0)


class FakeContext:
    """Records what the engine asks of a TensorRT execution context."""

    def __init__(self):
        self.shapes, self.addresses = {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return shape[2] % 8 == 0 and shape[3] % 8 == 0  # like a profile that needs multiples

    def get_tensor_shape(self, name):
        b, _, h, w = self.shapes["x"]
        return (b, 3, h, w)

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr


class FakeCudaEngine:
    def get_tensor_dtype(self, name):
        return FakeTrt.DataType.HALF


def bare_engine(temporal=False):
    """A TensorRTEngine without TensorRT or CUDA: only the binding logic is exercised."""
    import torch

    from engines.tensorrt_backend import DEFAULT_PROFILE, TensorRTEngine

    eng = TensorRTEngine.__new__(TensorRTEngine)
    eng.trt, eng.engine, eng.context = FakeTrt, FakeCudaEngine(), FakeContext()
    eng.inputs = ["x", "sigma"] + (["prev"] if temporal else [])
    eng.outputs = ["y"]
    eng.dtype, eng.torch_device = torch.float16, torch.device("cpu")
    eng.profile, eng._buffers, eng._bound = DEFAULT_PROFILE, {}, None
    return eng


def test_bind_sets_shapes_and_addresses_once_per_size():
    eng = bare_engine(temporal=True)
    a = eng._bind((1, 368, 640))
    assert eng.context.shapes == {"x": (1, 3, 368, 640), "sigma": (1, 1, 368, 640), "prev": (1, 3, 368, 640)}
    assert a["y"].shape == (1, 3, 368, 640)
    assert eng.context.addresses == {n: t.data_ptr() for n, t in a.items()}
    assert eng._bind((1, 368, 640)) is a  # same size: same buffers, no new allocation
    b = eng._bind((2, 720, 1280))
    assert eng.context.addresses["x"] == b["x"].data_ptr() != a["x"].data_ptr()
    eng._bind((1, 368, 640))  # back to the first size: its addresses are bound again
    assert eng.context.addresses["y"] == a["y"].data_ptr()
    assert eng.context.shapes["x"] == (1, 3, 368, 640)


def test_bind_reports_a_rejected_shape():
    eng = bare_engine()
    with pytest.raises(EngineError, match=r"TensorRT rejected input shape \(1, 3, 30, 40\) for 'x'"):
        eng._bind((1, 30, 40))


def test_profile_check_message():
    eng = bare_engine()
    with pytest.raises(EngineError, match=r"7680x4320 batch 1 is outside the TensorRT profile 128x128\.\.1920x1080\.\.3840x2160"):
        eng._check(np.zeros((1, 4320, 7680, 3), np.uint8))
    eng._check(np.zeros((1, 1080, 1920, 3), np.uint8))


def test_prepare_rebinds_the_plan_shape_before_replay():
    eng = bare_engine()
    eng.multiple = 16
    eng.prepare((1, 360, 640, 3))
    assert eng.context.shapes["x"] == (1, 3, 368, 640)
    eng.prepare((2, 720, 1280, 3))
    eng.prepare((1, 360, 640, 3))
    assert eng.context.shapes["x"] == (1, 3, 368, 640)
    assert eng.context.addresses["x"] == eng._buffers[1, 368, 640]["x"].data_ptr()

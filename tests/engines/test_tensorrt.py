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

    from engines.export import psnr

    f = frames(1, 270, 481)
    with open_engine("fast", backend="tensorrt", cache_dir=tmp_path) as t, \
            open_engine("fast", backend="torch", device="cpu") as ref:
        assert t.name == "tensorrt"
        assert psnr(t.infer(f, 25.0), ref.infer(f, 25.0), 255) >= 38
        with pytest.raises(EngineError, match="outside the TensorRT profile"):
            t.infer(np.zeros((1, 64, 64, 3), np.uint8), 10.0)

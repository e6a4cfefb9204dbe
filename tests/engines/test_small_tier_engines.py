"""The shipped ``tiny``, ``nano`` and ``pico`` through ONNX Runtime (the CPU path they are for) agree
with PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install '.[onnx]')")

from engine_helpers import frames

from engines import open_engine
from models.metrics import psnr


@pytest.mark.parametrize("model", ["tiny", "nano", "pico"])
def test_onnxruntime_matches_torch_on_odd_sizes(model: str) -> None:
    with open_engine(model, backend="torch", device="cpu") as t, \
            open_engine(model, backend="onnxruntime", device="cpu", threads=1) as o:
        assert o.name == "onnxruntime-cpu"
        for h, w in ((37, 53), (121, 203)):
            f = frames(2, h, w)
            sigma = np.array([15.0, 30.0], np.float32)
            a, b = t.infer(f, sigma), o.infer(f, sigma)
            assert a.shape == b.shape == f.shape
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
            assert psnr(a, b, 255) >= 50

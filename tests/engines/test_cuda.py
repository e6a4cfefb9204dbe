"""torch-cuda against torch-cpu through the product interface (skipped without a GPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import frames, random_net

from engines import open_engine
from models.metrics import psnr

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA"),
]


@pytest.mark.parametrize("precision, floor", [("fp32", 45), ("fp16", 38), ("bf16", 38)])
@pytest.mark.parametrize("graphs", [True, False])
def test_cuda_matches_cpu(precision, floor, graphs):
    net = random_net("fast")
    f = frames(2, 67, 121)
    sig = np.array([15.0, 40.0], np.float32)
    with open_engine("fast", backend="torch", device="cpu", net=net) as cpu, \
            open_engine("fast", backend="torch", device="cuda", precision=precision, net=net,
                        cuda_graphs=graphs) as gpu:
        ref = cpu.infer(f, sig)
        for _ in range(3):  # same shape again: the captured graph is replayed
            assert psnr(gpu.infer(f, sig), ref, 255) >= floor


def test_pipelined_submit_keeps_results_apart():
    """More submits in flight than buffer slots: older results are collected, not overwritten."""
    net = random_net("fast")
    with open_engine("fast", backend="torch", device="cuda", net=net) as gpu:
        inputs = [frames(1, 48, 64, seed=i) for i in range(5)]
        pending = [gpu.submit(x, 20.0) for x in inputs]
        outs = [p.result() for p in pending]
        for x, o in zip(inputs, outs):
            assert np.array_equal(o, gpu.infer(x, 20.0))
        assert not np.array_equal(outs[0], outs[1])

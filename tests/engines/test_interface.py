"""The engine interface on torch-cpu: shapes, sigma forms, prev, input checks, closing."""
from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import frames, random_net

from engines import EngineError, open_engine
from models.metrics import psnr


@pytest.fixture(scope="module")
def eng(fast_net):
    with open_engine("fast", backend="torch", device="cpu", net=fast_net) as e:
        yield e


def test_shapes_and_name(eng):
    f = frames(2, 37, 53)
    out = eng.infer(f, np.array([10.0, 40.0], np.float32))
    assert out.shape == (2, 37, 53, 3) and out.dtype == np.uint8
    assert eng.name == "torch-cpu" and eng.model == "fast" and eng.temporal is False
    assert eng.precision == "fp32"
    # random weights really change the picture (else layout bugs would go unseen)
    assert psnr(out, f, 255) < 35


def test_scalar_sigma_equals_constant_map(eng):
    f = frames(2, 33, 47)
    a = eng.infer(f, np.array([12.0, 30.0], np.float32))
    b = eng.infer(f, np.stack([np.full((33, 47), 12.0), np.full((33, 47), 30.0)]).astype(np.float32))
    assert np.array_equal(a, b)


def test_batch_equals_single_frames(eng):
    f = frames(2, 21, 35)
    both = eng.infer(f, np.array([20.0, 20.0], np.float32))
    one = eng.infer(f[1:], np.array([20.0], np.float32))
    assert np.array_equal(both[1:], one)


def test_sigma_changes_output(eng):
    f = frames(1, 32, 32)
    assert not np.array_equal(eng.infer(f, 5.0), eng.infer(f, 50.0))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4, 3), np.uint8), r"frames: expected a \(B, H, W, 3\) uint8 array, got uint8 array of shape \(4, 4, 3\)"),
    (np.zeros((1, 4, 4, 3), np.float32), "got float32 array"),
    (np.zeros((1, 4, 4, 4), np.uint8), "got uint8 array of shape"),
])
def test_bad_frames(eng, bad, match):
    with pytest.raises(EngineError, match=match):
        eng.infer(bad, np.array([1.0], np.float32))


def test_bad_sigma(eng):
    with pytest.raises(EngineError, match=r"sigma: expected shape \(1,\) or \(1, 8, 8\)"):
        eng.infer(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((2,), np.float32))
    with pytest.raises(EngineError, match="finite"):
        eng.infer(np.zeros((1, 8, 8, 3), np.uint8), np.array([np.nan], np.float32))


def test_closed_engine_refuses():
    e = open_engine("fast", backend="torch", device="cpu", net=random_net("fast"))
    e.close()
    with pytest.raises(EngineError, match="closed"):
        e.infer(np.zeros((1, 8, 8, 3), np.uint8), 1.0)


def test_temporal_prev():
    net = random_net("base-temporal")
    with open_engine("base-temporal", backend="torch", device="cpu", net=net) as e:
        assert e.temporal
        f = frames(1, 24, 40)
        first = e.infer(f, 20.0)  # no prev: the model sees the frame itself
        assert np.array_equal(first, e.infer(f, 20.0, prev=f))
        other = e.infer(f, 20.0, prev=frames(1, 24, 40, seed=7))
        assert not np.array_equal(first, other)
        with pytest.raises(EngineError, match="prev: expected a"):
            e.infer(f, 20.0, prev=f[:, :10])


def test_prev_ignored_by_spatial_model(eng):
    f = frames(1, 16, 16)
    assert np.array_equal(eng.infer(f, 10.0), eng.infer(f, 10.0, prev=frames(1, 16, 16, seed=3)))


def test_fp16_on_cpu_is_a_user_error():
    with pytest.raises(EngineError, match="fp32 or bf16"):
        open_engine("fast", backend="torch", device="cpu", precision="fp16")


def test_cpu_threads_set_while_open_and_restored_on_close():
    import torch

    before = torch.get_num_threads()
    with open_engine("fast", backend="torch", device="cpu", threads=1, net=random_net("fast")):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_submit_then_result_equals_infer(eng):
    f = frames(1, 20, 30)
    pending = [eng.submit(f, 10.0), eng.submit(f, 40.0)]
    assert np.array_equal(pending[0].result(), eng.infer(f, 10.0))
    assert np.array_equal(pending[1].result(), eng.infer(f, 40.0))


def test_infer_float_is_infer_on_8bit_values_and_takes_unclipped_input(eng):
    f = frames(2, 24, 40)
    sig = np.array([10.0, 30.0], np.float32)
    np.testing.assert_array_equal(eng.infer_float(f.astype(np.float32), sig), eng.infer(f, sig))
    # the evaluation protocol's noisy input: out of 0..255 and between the 8-bit steps
    unclipped = f.astype(np.float32) + np.random.default_rng(0).normal(0, 30, f.shape).astype(np.float32)
    assert unclipped.min() < 0 and unclipped.max() > 255
    assert not np.array_equal(eng.infer_float(unclipped, sig), eng.infer(np.clip(unclipped.round(), 0, 255).astype(np.uint8), sig))
    with pytest.raises(EngineError, match="float32 array, got uint8"):
        eng.infer_float(f, sig)


def test_infer_float_refused_where_frames_stay_8bit(eng):
    eng.takes_float = False  # what a CUDA-staged engine (torch-cuda, tensorrt) says
    try:
        with pytest.raises(EngineError, match="8-bit frames only"):
            eng.infer_float(frames(1, 8, 8).astype(np.float32), 5.0)
    finally:
        eng.takes_float = True

"""``tiny-half``: ``tiny``'s network run on the frame's 2 x 2 means (``engines.half_scale``), the
bottom rung of the live ladder."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from engine_helpers import frames

from engines import open_engine
from engines.half_scale import detail, down, up
from models import create_model
from models.metrics import psnr
from models.registry import macs_per_pixel, weights_path
from stream.tiers import ladder

SAMPLE = "stream/samples/sample.mp4"


def _torch_reference(x: np.ndarray, sigma: float) -> np.ndarray:
    net = create_model("tiny-half")
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        y = net(t, torch.full((x.shape[0], 1) + x.shape[1:3], sigma / 255))
    return (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_resizes_are_two_by_two_means_and_bilinear_doubling() -> None:
    a = np.arange(2 * 5 * 7 * 3, dtype=np.float32).reshape(2, 5, 7, 3)
    d = down(a)
    assert d.shape == (2, 3, 4, 3)  # odd sides edge-padded first
    assert d[0, 0, 0, 0] == pytest.approx(a[0, :2, :2, 0].mean())
    assert d[1, 2, 3, 2] == pytest.approx(a[1, 4, 6, 2])  # the corner cell: one pixel, padded
    u = up(np.full((1, 3, 4, 3), 200, np.uint8), 5, 7)
    assert u.shape == (1, 5, 7, 3) and (u == 200).all()


def test_detail_brings_back_edges_and_leaves_noise_out() -> None:
    """The band the half-size network cannot see: a one-pixel grid of 60 levels stands far out
    of noise of 10 and comes back nearly whole; the noise alone, from the same frame, does not."""
    rng = np.random.default_rng(0)
    low = np.full((64, 64, 3), 100, np.uint8)
    flat = np.full((64, 64), 100, np.uint8)  # its grey
    grid = low.copy()
    grid[:, ::2] = 160
    back = detail(grid, flat, low, 10.0).astype(int) - low
    assert np.abs(back - (grid.astype(int) - low)).mean() < 3  # of 30 on average
    noisy = np.clip(np.rint(low + rng.normal(0, 10, low.shape)), 0, 255).astype(np.uint8)
    kept = detail(noisy, flat, low, 10.0).astype(int) - low
    assert np.abs(kept).mean() < 0.15 * np.abs(noisy.astype(int) - low).mean()


def test_engine_is_the_torch_module_within_rounding_on_odd_sizes() -> None:
    with open_engine("tiny-half", backend="torch", device="cpu") as e:
        assert e.model == "tiny-half" and e.inner.model == "tiny"
        for h, w in ((37, 53), (120, 202)):
            f = frames(2, h, w)
            out = e.infer(f, np.array([20.0, 20.0], np.float32))
            ref = _torch_reference(f, 20.0)
            assert out.shape == f.shape
            # 8-bit grey and means on one side, floats on the other: where the detail's gain
            # sits at its threshold a pixel may differ by up to 9 levels, most by none
            assert np.abs(out.astype(int) - ref.astype(int)).mean() <= 0.5
            assert psnr(out, ref, 255) >= 48


def test_onnxruntime_matches_torch_and_takes_a_map() -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install '.[onnx]')")
    f = frames(1, 61, 99)
    flat = np.full((1, 61, 99), 15.0, np.float32)
    with open_engine("tiny-half", backend="torch", device="cpu") as t, \
            open_engine("tiny-half", backend="onnxruntime", device="cpu", threads=1) as o:
        assert o.name == "onnxruntime-cpu"
        a, b = t.infer(f, np.array([15.0], np.float32)), o.infer(f, flat)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_half_scale_model_must_name_the_network_it_runs() -> None:
    import dataclasses

    from models.registry import get_spec

    with pytest.raises(ValueError, match="weights_of"):  # else open_engine would open itself
        dataclasses.replace(get_spec("tiny-half"), weights_of=None)


def test_weights_are_tinys_and_it_costs_a_quarter() -> None:
    assert weights_path("tiny-half") == weights_path("tiny")
    assert macs_per_pixel("tiny-half") == pytest.approx(macs_per_pixel("tiny") / 4, rel=0.01)
    tiers = [t.model for t in ladder()]
    assert tiers[-1] == "tiny-half" and tiers.index("pico") == len(tiers) - 2


def test_denoises_the_sample_between_pico_and_tiny() -> None:
    """The bundled sample's first 6 frames with white noise of 15 and 30, told the level:
    measured 31.52 / 28.21 dB against ``pico``'s 30.93 / 29.01 and ``tiny``'s 32.23 / 29.84;
    without its detail step 30.3 / 28.1 (``python -m stream.bench --compare``, 30 frames).
    So within 1 dB of ``pico`` and below ``tiny`` at both levels, above ``pico`` where the
    noise is light enough for the detail to stand out of it."""
    with av.open(SAMPLE) as c:
        clean = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(6), c.decode(video=0))])
    rng = np.random.default_rng(0)
    with open_engine("tiny-half", backend="torch", device="cpu") as half, \
            open_engine("pico", backend="torch", device="cpu") as pico, \
            open_engine("tiny", backend="torch", device="cpu") as tiny:
        for sigma, floor in ((15.0, 31.3), (30.0, 28.0)):
            noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
            level = np.full(len(clean), sigma, np.float32)
            got, p, t = (np.mean([psnr(o, c, 255) for o, c in zip(e.infer(noisy, level), clean)])
                         for e in (half, pico, tiny))
            assert got >= floor, (sigma, got)
            assert p - 1.0 <= got <= t, (sigma, got, p, t)
            if sigma == 15.0:
                assert got > p, (got, p)


def test_the_processor_never_splits_it() -> None:
    """Its 2 x 2 means already make coarse noise finer; the phase split would triple its cost."""
    from stream.processor import Processor

    with open_engine("tiny-half", backend="torch", device="cpu") as half, \
            open_engine("tiny", backend="torch", device="cpu") as full:
        assert Processor(half, coarse="auto").coarse == "off"
        assert Processor(half, coarse="blend").coarse_reading is None
        assert Processor(full, coarse="auto").coarse == "auto"


def test_float_frames_give_what_8_bit_frames_give() -> None:
    """The evaluation protocol's float frames (``infer_float``, which the network's engine may
    scale in place) take the same path: the same frames as floats score as 8-bit."""
    f = frames(1, 64, 96)
    level = np.array([15.0], np.float32)
    with open_engine("tiny-half", backend="torch", device="cpu") as e:
        a, b = e.infer(f, level), e.infer_float(f.astype(np.float32), level)
    d = np.abs(a.astype(int) - b.astype(int))  # 8-bit means and greys on one side
    assert d.max() <= 3 and d.mean() <= 0.5  # (in place, the float path was 118 levels off)

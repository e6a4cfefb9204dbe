"""int8 graphs for ONNX Runtime on a CPU (engines/quantize.py), with the shipped weights."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install '.[onnx]')")

from engines import EngineError, open_engine
from engines.cache import read_sidecar
from engines.export import ensure_onnx
from engines.quantize import calibration_frames, float_convs
from models.metrics import psnr


@pytest.fixture(scope="module")
def int8_tiny(tmp_path_factory: pytest.TempPathFactory):
    return ensure_onnx("tiny", "int8", tmp_path_factory.mktemp("int8"))


def test_inner_convs_are_integer_and_stem_and_tail_float(int8_tiny):
    import onnx

    model = onnx.load(str(int8_tiny))
    g = model.graph
    convs = [n for n in g.node if n.op_type in ("Conv", "ConvTranspose")]
    dequantized = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear"}
    weights = {i.name for i in g.initializer}
    # a quantized conv reads its weight through DequantizeLinear (QDQ); a float one directly
    float_names = {n.name for n in convs if n.input[1] in weights}
    assert float_names == set(float_convs(model))
    assert len(float_names) == 3  # the stem's two (frame, noise map) and the tail
    assert sum(n.input[1] in dequantized for n in convs) == len(convs) - 3 >= 6
    info = read_sidecar(int8_tiny)
    assert info["precision"] == "int8" and info["multiple"] == 16 and info["from"].startswith("tiny-fp32-")


def test_int8_engine_denoises_like_fp32(int8_tiny):
    """A frame of the sample the calibration did not read, noise of 15 levels: the int8 output
    is within 0.3 dB of fp32's against the clean frame, and far above the noisy input."""
    import av

    from engines.quantize import sample_clip

    with av.open(str(sample_clip())) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in zip(range(8), c.decode(video=0))]
    used = [f.tobytes() for f in calibration_frames()]
    clean = next(f for f in frames[1:] if f.tobytes() not in used)
    rng = np.random.default_rng(3)
    noisy = np.clip(np.rint(clean + rng.normal(0, 15, clean.shape)), 0, 255).astype(np.uint8)
    with open_engine("tiny", backend="onnxruntime", device="cpu", onnx_path=int8_tiny, precision="int8") as q, \
            open_engine("tiny", backend="onnxruntime", device="cpu", precision="fp32") as f:
        assert q.precision == "int8"
        p_q = psnr(q.infer(noisy[None], 15.0)[0], clean, 255)
        p_f = psnr(f.infer(noisy[None], 15.0)[0], clean, 255)
    assert p_q >= p_f - 0.3, (p_q, p_f)
    assert p_q >= psnr(noisy, clean, 255) + 5


def test_int8_is_refused_where_it_cannot_run():
    with pytest.raises(EngineError, match="int8 runs on onnxruntime"):
        open_engine("tiny", backend="torch", device="cpu", precision="int8")
    with pytest.raises(EngineError, match="expected one of"):
        open_engine("tiny", backend="onnxruntime", device="cpu", precision="int4")


def test_int8_on_cbsd68_costs_little(data_dir):
    """The first 8 CBSD68 photos, 8-bit noisy at sigma 15 and 25: int8 `tiny` within 0.15 dB
    of fp32 (all 68, measured: -0.08 and -0.05 dB)."""
    from models.data import read_rgb, split_paths

    imgs = [read_rgb(p) for p in split_paths(data_dir, "cbsd68")[:8]]
    with open_engine("tiny", backend="onnxruntime", device="cpu", precision="int8") as q, \
            open_engine("tiny", backend="onnxruntime", device="cpu", precision="fp32") as f:
        for sigma in (15, 25):
            rng = np.random.default_rng(sigma)
            diffs = []
            for img in imgs:
                n8 = np.clip(np.rint(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)
                s = np.array([sigma], np.float32)
                diffs.append(psnr(q.infer(n8[None], s)[0], img, 255) - psnr(f.infer(n8[None], s)[0], img, 255))
            assert np.mean(diffs) >= -0.15, (sigma, np.mean(diffs))


@pytest.mark.slow
def test_a_recurrent_model_quantizes_with_its_previous_output_in_float(tmp_path):
    """``fast-temporal``: its third stem convolution (the previous output) stays float too,
    and the int8 engine denoises with and without a previous output like the fp32 one."""
    import onnx

    path = ensure_onnx("fast-temporal", "int8", tmp_path)
    assert len(float_convs(onnx.load(str(path)))) == 4  # frame, noise map, previous, tail
    rng = np.random.default_rng(5)
    clean = calibration_frames(count=2)[1][:96, :128]
    noisy = np.clip(np.rint(clean + rng.normal(0, 20, clean.shape)), 0, 255).astype(np.uint8)[None]
    with open_engine("fast-temporal", backend="onnxruntime", device="cpu", onnx_path=path,
                     precision="int8") as q, \
            open_engine("fast-temporal", backend="onnxruntime", device="cpu", precision="fp32") as f:
        for prev in (None, noisy):
            a, b = q.infer(noisy, 20.0, prev=prev)[0], f.infer(noisy, 20.0, prev=prev)[0]
            assert psnr(a, clean, 255) >= psnr(b, clean, 255) - 0.5
            assert psnr(a, clean, 255) >= psnr(noisy[0], clean, 255) + 5

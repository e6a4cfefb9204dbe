"""ONNX export and ONNX Runtime against PyTorch, on odd sizes, with random weights."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")

from engine_helpers import frames, random_net

from engines import open_engine
from engines.cache import read_sidecar
from engines.validate import validate
from models.metrics import psnr

ODD = [(37, 53), (67, 41), (121, 203)]


def test_graph_has_dynamic_batch_height_width(onnx_export):
    import onnx

    path = onnx_export("fast", "fp32")
    g = onnx.load(str(path)).graph
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    assert [i.name for i in g.input] == ["x", "sigma"]
    assert read_sidecar(path)["multiple"] == 16


def test_fp32_round_trip_odd_sizes(onnx_export):
    rows = validate(onnx_export("fast", "fp32"), "fast", "fp32", ODD, net=random_net("fast"))
    assert [(r["height"], r["width"]) for r in rows] == ODD
    for r in rows:
        assert r["psnr_db"] >= 45, r
        assert r["max_abs_err"] < 1e-3, r


def test_fp16_graph_is_typed_and_close_to_fp32(onnx_export):
    import onnx

    path = onnx_export("fast", "fp16")
    g = onnx.load(str(path)).graph
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert g.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert {i.data_type for i in g.initializer if len(i.dims) == 4} == {onnx.TensorProto.FLOAT16}
    for r in validate(path, "fast", "fp16", ODD[:2], net=random_net("fast")):
        assert r["psnr_db"] >= 38, r


def test_onnxruntime_engine_matches_torch_engine(onnx_export, fast_net):
    """Through the product interface (uint8 in and out), per-frame and per-pixel sigma."""
    f = frames(2, 37, 53)
    maps = np.random.default_rng(0).uniform(0, 50, (2, 37, 53)).astype(np.float32)
    with open_engine("fast", backend="torch", device="cpu", net=fast_net) as t, \
            open_engine("fast", backend="onnxruntime", device="cpu",
                        onnx_path=onnx_export("fast", "fp32")) as o, \
            open_engine("fast", backend="onnxruntime", device="cpu", precision="fp16",
                        onnx_path=onnx_export("fast", "fp16")) as h:
        assert o.name == "onnxruntime-cpu" and h.precision == "fp16"
        for sigma in (np.array([10.0, 35.0], np.float32), maps):
            ref = t.infer(f, sigma)
            assert psnr(o.infer(f, sigma), ref, 255) >= 45
            assert psnr(h.infer(f, sigma), ref, 255) >= 38
            assert psnr(ref, f, 255) < 35  # the network really did something


@pytest.mark.slow
def test_temporal_model_round_trip(onnx_export):
    net = random_net("base-temporal")
    path = onnx_export("base-temporal", "fp32")
    rows = validate(path, "base-temporal", "fp32", [(29, 45)], net=net)
    assert rows[0]["psnr_db"] >= 45
    f, p = frames(1, 29, 45), frames(1, 29, 45, seed=5)
    with open_engine("base-temporal", backend="torch", device="cpu", net=net) as t, \
            open_engine("base-temporal", backend="onnxruntime", device="cpu", onnx_path=path) as o:
        assert psnr(o.infer(f, 20.0, prev=p), t.infer(f, 20.0, prev=p), 255) >= 45
        assert psnr(o.infer(f, 20.0), t.infer(f, 20.0), 255) >= 45


def test_export_cache_reuses_and_repairs(tmp_path, monkeypatch):
    """ensure_onnx exports once, reuses the file, and re-exports one that no longer matches."""
    from engines import export

    calls = []
    real = export.export_onnx

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"  # fixed weights: the shipped ones may be retrained meanwhile
    save_file(random_net("fast").state_dict(), str(weights))
    monkeypatch.setattr(export, "export_onnx", counting)
    p1 = export.ensure_onnx("fast", "fp32", tmp_path, weights)
    p2 = export.ensure_onnx("fast", "fp32", tmp_path, weights)
    assert p1 == p2 and len(calls) == 1
    p1.write_bytes(p1.read_bytes()[:100])  # truncated, e.g. an interrupted copy
    export.ensure_onnx("fast", "fp32", tmp_path, weights)
    assert len(calls) == 2 and p1.stat().st_size > 1000
    save_file(random_net("fast", seed=9).state_dict(), str(weights))  # retrained: new export
    p3 = export.ensure_onnx("fast", "fp32", tmp_path, weights)
    assert p3 != p1 and len(calls) == 3


def test_output_to_uint8_matches_clip_scale_rint():
    """The engine's OpenCV output conversion gives exactly clip(0, 1) x 255, rint (half to even)
    on a padded batch, fp32 and fp16, ties and values out of range included."""
    from engines.onnxruntime_backend import to_uint8

    rng = np.random.default_rng(0)
    y = rng.uniform(-0.1, 1.1, (2, 3, 21, 35)).astype(np.float32)
    y[0, 0, 0, :7] = [0.5 / 255, 1.5 / 255, 2.5 / 255, -1e-9, 1.0000001, 254.5 / 255, 3.0]
    for arr in (y, y.astype(np.float16)):
        ref = np.rint(np.clip(arr[..., :19, :31].astype(np.float32), 0, 1) * np.float32(255))
        assert np.array_equal(to_uint8(arr, 19, 31), ref.transpose(0, 2, 3, 1).astype(np.uint8))

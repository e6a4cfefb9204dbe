"""Backend choice: order, fallbacks, and the one-line messages (availability simulated)."""
from __future__ import annotations

import logging

import pytest

from engines import EngineError, open_engine, select
from engines.base import BackendUnavailable


class FakeEngine:
    def __init__(self, label: str, model: str, **kw):
        self.name, self.model, self.kw = label, model, kw


def fake_loader(available: dict[str, str | None]):
    """available: label -> None (works) or the reason it does not."""
    tried = []

    def load(c: select.Candidate):
        tried.append(c.label)
        reason = available.get(c.label, "not simulated")
        if reason is not None:
            raise BackendUnavailable(reason)

        class Mod:
            @staticmethod
            def ENGINE(model, **kw):
                return FakeEngine(c.label, model, **kw)

        return Mod

    load.tried = tried  # type: ignore[attr-defined]
    return load


ALL_DOWN = {"tensorrt-cuda": "no tensorrt", "torch-cuda": "no GPU",
            "onnxruntime-cpu": "no onnxruntime", "torch-cpu": "broken"}


def test_auto_order_prefers_tensorrt_then_torch_cuda(monkeypatch):
    load = fake_loader({**ALL_DOWN, "tensorrt-cuda": None, "torch-cuda": None})
    monkeypatch.setattr(select, "loader", load)
    assert open_engine("fast").name == "tensorrt-cuda"
    load = fake_loader({**ALL_DOWN, "torch-cuda": None, "torch-cpu": None})
    monkeypatch.setattr(select, "loader", load)
    assert open_engine("fast").name == "torch-cuda"
    assert load.tried == ["tensorrt-cuda", "torch-cuda"]


def test_auto_on_cpu_logs_why_others_were_skipped(monkeypatch, caplog):
    load = fake_loader({**ALL_DOWN, "torch-cpu": None})
    monkeypatch.setattr(select, "loader", load)
    with caplog.at_level(logging.INFO, logger="engines"):
        eng = open_engine("fast", backend="auto", device="auto")
    assert eng.name == "torch-cpu"
    assert load.tried == ["tensorrt-cuda", "torch-cuda", "onnxruntime-cpu", "torch-cpu"]
    msg = caplog.records[-1].getMessage()
    assert msg == ("engine: using torch-cpu (skipped tensorrt-cuda: no tensorrt; torch-cuda: no GPU; "
                   "onnxruntime-cpu: no onnxruntime)")
    assert eng.skipped == ["tensorrt-cuda: no tensorrt", "torch-cuda: no GPU", "onnxruntime-cpu: no onnxruntime"]


def test_cpu_default_is_onnxruntime_then_torch(monkeypatch):
    """README's measured order on a CPU: ONNX Runtime first, PyTorch when it cannot run."""
    assert [c.label for c in select.candidates("auto", "cpu")] == ["onnxruntime-cpu", "torch-cpu"]
    load = fake_loader({"onnxruntime-cpu": None, "torch-cpu": None})
    monkeypatch.setattr(select, "loader", load)
    assert open_engine("fast", device="cpu").name == "onnxruntime-cpu"
    assert load.tried == ["onnxruntime-cpu"]
    load = fake_loader({"onnxruntime-cpu": "no onnxruntime", "torch-cpu": None})
    monkeypatch.setattr(select, "loader", load)
    eng = open_engine("fast", device="cpu")
    assert eng.name == "torch-cpu" and eng.skipped == ["onnxruntime-cpu: no onnxruntime"]


def test_unknown_options_are_rejected_by_a_named_backend(monkeypatch):
    class Strict:
        def __init__(self, model, device="cpu", precision="auto", weights=None, threads=None):
            self.name, self.model, self.threads = "strict", model, threads

    class Mod:
        ENGINE = Strict

    monkeypatch.setattr(select, "loader", lambda c: Mod)
    with pytest.raises(EngineError, match=r"^backend torch takes no option compille; "
                                          r"expected some of: threads$"):
        open_engine("fast", backend="torch", device="cpu", compille=True)
    # auto: an option one backend does not take (threads on TensorRT) is left out for it
    assert open_engine("fast", device="cpu", threads=2).threads == 2
    assert open_engine("fast", device="cpu", compille=True).name == "strict"


def test_real_backends_take_no_stray_options():
    pytest.importorskip("onnxruntime")
    with pytest.raises(EngineError, match="takes no option colour"):
        open_engine("fast", backend="onnxruntime", device="cpu", colour="red")


def test_nothing_works_one_error_listing_each(monkeypatch):
    monkeypatch.setattr(select, "loader", fake_loader(ALL_DOWN))
    with pytest.raises(EngineError) as e:
        open_engine("fast")
    assert str(e.value) == ("no backend can run model 'fast' here: tensorrt-cuda: no tensorrt; "
                            "torch-cuda: no GPU; onnxruntime-cpu: no onnxruntime; torch-cpu: broken")
    assert "\n" not in str(e.value)


def test_explicit_backend_unavailable(monkeypatch):
    monkeypatch.setattr(select, "loader", fake_loader(ALL_DOWN))
    with pytest.raises(EngineError, match=r"^backend 'tensorrt' is unavailable here: tensorrt-cuda: no tensorrt$"):
        open_engine("fast", backend="tensorrt")


def test_explicit_backend_and_device(monkeypatch):
    load = fake_loader({"torch-cpu": None, "torch-cuda": None, "onnxruntime-cuda": None})
    monkeypatch.setattr(select, "loader", load)
    assert open_engine("fast", backend="torch", device="cpu").name == "torch-cpu"
    assert open_engine("fast", backend="onnxruntime", device="cuda:1").name == "onnxruntime-cuda"
    assert load.tried[-1] == "onnxruntime-cuda"


def test_options_reach_the_backend(monkeypatch):
    monkeypatch.setattr(select, "loader", fake_loader({"torch-cpu": None}))
    eng = open_engine("fast", backend="torch", device="cpu", precision="fp32", compile=True)
    assert eng.kw == {"device": "cpu", "precision": "fp32", "weights": None, "compile": True}


@pytest.mark.parametrize("kw, match", [
    ({"backend": "tensorflow"}, "unknown backend 'tensorflow'; expected one of: auto, torch, onnxruntime, tensorrt"),
    ({"device": "gpu"}, "unknown device 'gpu'; expected one of: auto, cpu, cuda"),
    ({"precision": "int4"}, "unknown precision 'int4'; expected one of: auto, fp32, fp16, bf16, int8"),
    ({"backend": "tensorrt", "device": "cpu"}, "backend 'tensorrt' does not run on device 'cpu'"),
])
def test_user_mistakes(kw, match):
    with pytest.raises(EngineError, match=match):
        open_engine("fast", **kw)


def test_unknown_model_lists_names():
    with pytest.raises(EngineError, match="unknown model 'huge'; expected one of: .*fast"):
        open_engine("huge")


def test_a_model_without_weights_is_one_error_before_any_backend(monkeypatch, caplog):
    """A lab model ships no weights: one EngineError naming the file and the way to run it,
    and no backend is tried (each used to warn and fail on the same missing file)."""
    tried = []
    monkeypatch.setattr(select, "loader", lambda c: tried.append(c) or pytest.fail("a backend was tried"))
    with caplog.at_level(logging.WARNING), \
            pytest.raises(EngineError, match=r"model 'fast-fusion' ships no weights \(no .*"
                                             r"fast-fusion\.safetensors\); .*DENOISE_WEIGHTS_DIR"):
        open_engine("fast-fusion")
    assert tried == [] and not caplog.records


def test_real_probes_here_say_why():
    """On this machine: real reasons for what is missing, real engine for what is not."""
    with open_engine("fast", device="cpu") as eng:
        assert eng.name in ("onnxruntime-cpu", "torch-cpu")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(EngineError, match="tensorrt is not installed"):
            open_engine("fast", backend="tensorrt")


def test_auto_survives_a_crashing_backend(monkeypatch, caplog):
    def load(c):
        if c.label == "onnxruntime-cpu":
            class Mod:
                @staticmethod
                def ENGINE(model, **kw):
                    raise RuntimeError("export exploded")
            return Mod
        if c.label == "torch-cpu":
            return fake_loader({"torch-cpu": None})(c)
        raise BackendUnavailable("absent")

    monkeypatch.setattr(select, "loader", load)
    with caplog.at_level(logging.WARNING, logger="engines"):
        eng = open_engine("fast")
    assert eng.name == "torch-cpu"
    assert "onnxruntime-cpu: failed with RuntimeError: export exploded" in eng.skipped
    assert "engine onnxruntime-cpu failed (RuntimeError: export exploded)" in caplog.text
    with pytest.raises(RuntimeError, match="export exploded"):
        open_engine("fast", backend="onnxruntime", device="cpu")


def test_missing_exporter_makes_onnxruntime_unavailable(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    from engines import export

    def no_onnxscript(*a, **k):
        raise ModuleNotFoundError("No module named 'onnxscript'", name="onnxscript")

    monkeypatch.setattr(export, "ensure_onnx", no_onnxscript)
    with pytest.raises(EngineError, match=r"onnxruntime-cpu: ONNX export needs onnxscript \(pip install '\.\[onnx\]'\)"):
        open_engine("fast", backend="onnxruntime", device="cpu")

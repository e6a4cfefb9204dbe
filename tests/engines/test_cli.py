"""python -m engines build | bench | list, called through main()."""
from __future__ import annotations

import json

import pytest

from engines.__main__ import main


@pytest.mark.slow
def test_build_onnx_only_then_list(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    assert main(["build", "--model", "fast", "--precision", "fp16", "--onnx-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    onnx = list(tmp_path.glob("fast-fp16-*.onnx"))
    assert len(onnx) == 1 and str(onnx[0]) in out
    rows = [line for line in out.splitlines() if "ONNX Runtime vs PyTorch fp32" in line]
    assert len(rows) == 3 and all("PSNR" in r and "max abs error" in r for r in rows)
    psnrs = [float(r.split("PSNR ")[1].split()[0]) for r in rows]
    assert min(psnrs) >= 38
    assert main(["list", "--out", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert onnx[0].name in listing and "fast fp16" in listing


def test_build_of_a_half_scale_model_builds_the_network_it_runs(tmp_path, capsys):
    """``tiny-half``'s engines run ``tiny``'s network on half-size frames: that is what is
    built (its own graph, with the resizes inside, is never run; exporting it failed)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    assert main(["build", "--model", "tiny-half", "--onnx-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tiny-half runs tiny's network on half-size frames: building tiny" in out
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.onnx")] == ["tiny"]


def test_build_plan_without_tensorrt_is_a_user_error(tmp_path, capsys, monkeypatch):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    from engines import export, validate

    def fake_ensure(model, precision, directory=None, weights=None):
        p = tmp_path / "g.onnx"
        p.write_bytes(b"x")
        return p

    monkeypatch.setattr(export, "ensure_onnx", fake_ensure)
    monkeypatch.setattr(validate, "validate", lambda *a, **k: [])
    assert main(["build", "--model", "fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: tensorrt is not installed") and err.endswith("or use --onnx-only")
    assert "\n" not in err


def test_bench_torch_cpu_writes_numbers(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--model", "fast", "--size", "64x48", "--backend", "torch-cpu",
                 "--seconds", "0.05", "--min-iters", "3", "--streams", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    (row,) = res["results"]
    assert row["backend"] == "torch-cpu" and row["size"] == "64x48" and row["streams"] == 2
    assert 0 < row["ms_median"] <= row["ms_p90"] and row["iters"] >= 3
    assert row["fps"] == pytest.approx(1000 / row["ms_median"], rel=0.005, abs=0.06)  # both rounded
    assert row["peak_rss_mib"] > 0 and res["machine"]["cpu_count"] >= 1
    assert "torch-cpu" in capsys.readouterr().out


def test_bench_unavailable_backend_is_reported_not_fatal(tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    assert main(["bench", "--model", "fast", "--size", "32x32", "--backend", "tensorrt", "--seconds", "0"]) == 0
    assert "tensorrt          skipped: backend 'tensorrt' is unavailable here" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [
    (["bench", "--model", "huge"], "error: unknown model 'huge'; expected one of:"),
    (["bench", "--streams", "0"], "error: --streams: expected 1 or more, got 0"),
    (["build", "--min", "2000x2000", "--onnx-only"], "error: profile needs min <= opt <= max"),
])
def test_user_errors_one_line_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(msg) and err.count("\n") == 1

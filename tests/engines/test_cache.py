"""Plan keys, cache folder, and the plan cache's rebuild logic with TensorRT mocked."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from engines import cache
from engines.build import LoadedPlan, ensure_plan, profile_shapes

PROFILE = cache.Profile(min=(256, 256), opt=(1080, 1920), max=(2160, 3840))
KEY = cache.PlanKey(onnx_sha256="a" * 64, trt_version="11.4.0", gpu_name="NVIDIA H100 80GB HBM3",
                    compute_capability="9.0", profile=PROFILE, precision="fp16",
                    builder_options={"workspace": 4 << 30})


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "b" * 64},
    {"trt_version": "10.13.0"},
    {"gpu_name": "NVIDIA L4"},
    {"compute_capability": "8.9"},
    {"profile": cache.Profile(min=(256, 256), opt=(720, 1280), max=(2160, 3840))},
    {"profile": dataclasses.replace(PROFILE, batch=(1, 4, 8))},
    {"precision": "fp32"},
    {"builder_options": {"workspace": 1 << 30}},
])
def test_every_component_changes_the_key(change):
    other = dataclasses.replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert other.filename("base") != KEY.filename("base")


def test_key_is_stable():
    same = dataclasses.replace(KEY, builder_options={"workspace": 4 << 30})
    assert same.digest() == KEY.digest()
    assert KEY.filename("base").startswith("base-fp16-") and KEY.filename("base").endswith(".plan")


def test_parse_size_and_profile_checks():
    from engines.__main__ import _size
    from engines.base import parse_size

    assert parse_size("1920x1080") == (1920, 1080)  # (W, H), as written
    assert _size("1920x1080") == (1080, 1920)  # the engines' (H, W)
    with pytest.raises(ValueError, match="expected a size like 1280x720, got '1080p'"):
        parse_size("1080p")
    with pytest.raises(ValueError, match="min <= opt <= max"):
        cache.Profile(min=(1080, 1920), opt=(720, 1280), max=(2160, 3840))
    assert PROFILE.describe() == "256x256..1920x1080..3840x2160"
    assert PROFILE.covers(1, 1080, 1920) and not PROFILE.covers(1, 200, 1920)
    assert not PROFILE.covers(2, 1080, 1920)


def test_profile_shapes_round_up_to_multiple():
    mn, opt, mx = profile_shapes(cache.Profile((250, 250), (1080, 1920), (2160, 3840)), 16, 3)
    assert mn == (1, 3, 256, 256) and opt == (1, 3, 1088, 1920) and mx == (1, 3, 2160, 3840)


def test_cache_dir_override_order(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env"))
    assert cache.cache_dir() == tmp_path / "env"
    assert cache.cache_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv(cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "denoise-stream" / "engines"


class FakeOps:
    """Stands in for TensorRT: a 'plan' is bytes that 'deserialize' when they start right."""

    version = "11.4.0"

    def __init__(self, gpu=("NVIDIA H100 80GB HBM3", "9.0")):
        self._gpu = gpu
        self.builds = 0

    def gpu(self):
        return self._gpu

    def build(self, onnx_path: Path, profile, multiple, timing_cache: Path) -> bytes:
        self.builds += 1
        timing_cache.write_bytes(b"timings")
        return b"PLAN" + onnx_path.read_bytes()[:16] + self._gpu[0].encode()

    def deserialize(self, data: bytes):
        if not data.startswith(b"PLAN") or not data.endswith(self._gpu[0].encode()):
            return None  # what TensorRT does for another version/GPU or garbage
        return {"engine": data}


@pytest.fixture
def onnx_file(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"fake onnx graph bytes" * 10)
    return p


def plan(onnx_file, ops, **kw) -> LoadedPlan:
    return ensure_plan("base", "fp16", PROFILE, onnx_file, 8, onnx_file.parent / "cache", ops, **kw)


def test_build_once_then_cached(onnx_file):
    ops = FakeOps()
    first = plan(onnx_file, ops)
    assert first.built and first.path.exists() and ops.builds == 1
    second = plan(onnx_file, ops)
    assert not second.built and second.path == first.path and ops.builds == 1
    info = cache.read_sidecar(first.path)
    assert info["gpu"] == "NVIDIA H100 80GB HBM3" and info["profile"] == PROFILE.describe()
    assert list((onnx_file.parent / "cache").glob("timing-trt11.4.0-NVIDIA-H100-80GB-HBM3-sm9.0.cache"))


def test_corrupt_plan_is_rebuilt_with_a_message(onnx_file, caplog):
    ops = FakeOps()
    path = plan(onnx_file, ops).path
    path.write_bytes(path.read_bytes()[:7])  # truncated
    with caplog.at_level(logging.WARNING, logger="engines.build"):
        again = plan(onnx_file, ops)
    assert again.built and ops.builds == 2
    assert "does not match its record" in caplog.text and "rebuilding" in caplog.text
    assert again.engine["engine"] == path.read_bytes()


def test_plan_that_does_not_load_is_rebuilt(onnx_file, caplog):
    ops = FakeOps()
    path = plan(onnx_file, ops).path
    # bytes match the record, but TensorRT refuses them (as for a plan from another version)
    garbage = b"XXXX" + path.read_bytes()[4:]
    path.write_bytes(garbage)
    sidecar = cache.read_sidecar(path)
    sidecar["sha256"] = cache.sha256_bytes(garbage)
    cache.write_sidecar(path, sidecar)
    with caplog.at_level(logging.WARNING, logger="engines.build"):
        again = plan(onnx_file, ops)
    assert again.built and ops.builds == 2 and "does not load with TensorRT 11.4.0" in caplog.text


def test_other_gpu_or_graph_gets_its_own_plan(onnx_file):
    a = plan(onnx_file, FakeOps())
    b = plan(onnx_file, FakeOps(gpu=("NVIDIA L4", "8.9")))
    assert a.path != b.path and b.built
    onnx_file.write_bytes(b"retrained weights" * 10)
    c = plan(onnx_file, FakeOps())
    assert c.path != a.path and c.built


def test_force_rebuilds(onnx_file):
    ops = FakeOps()
    plan(onnx_file, ops)
    assert plan(onnx_file, ops, force=True).built and ops.builds == 2


def test_entries_lists_artefacts(onnx_file):
    path = plan(onnx_file, FakeOps()).path
    found = cache.entries(path.parent)
    assert [p for p, _ in found] == [path]
    assert found[0][1]["kind"] == "plan"

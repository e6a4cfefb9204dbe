"""ONNX -> TensorRT plan, in small steps (as Polygraphy names them), and the plan cache.

network_from_onnx -> engine_from_network (profile, timing cache) -> save_engine; and
``ensure_plan``, which finds a cached plan by its key (cache.PlanKey) or builds one, and
rebuilds a stale or corrupt plan with a message instead of failing.

The TensorRT calls sit behind ``TrtOps`` so the cache logic runs (and is tested) without
TensorRT; ``tensorrt`` itself is imported only when a plan is really built or loaded.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cache
from .base import BackendUnavailable

log = logging.getLogger("engines.build")

WORKSPACE = 4 << 30


class BuildError(RuntimeError):
    pass


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as e:
        raise BackendUnavailable(
            "tensorrt is not installed (pip install '.[tensorrt]' with NVIDIA's package index, "
            f"see README): {e}"
        ) from e
    return tensorrt


def profile_shapes(profile: cache.Profile, multiple: int, channels: int) -> tuple[tuple, tuple, tuple]:
    """(min, opt, max) NCHW shapes, H and W rounded up to the graph's multiple."""
    def up(v: int) -> int:
        return -(-v // multiple) * multiple

    b = profile.batch
    return tuple(  # type: ignore[return-value]
        (b[i], channels, up(hw[0]), up(hw[1])) for i, hw in enumerate((profile.min, profile.opt, profile.max))
    )


class TrtOps:
    """The TensorRT calls the cache needs: version, GPU identity, build, deserialize."""

    def __init__(self, device_index: int = 0) -> None:
        self.trt = import_tensorrt()
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.device_index = device_index
        self._runtime: Any = None

    @property
    def version(self) -> str:
        return str(self.trt.__version__)

    def gpu(self) -> tuple[str, str]:
        import torch

        major, minor = torch.cuda.get_device_capability(self.device_index)
        return torch.cuda.get_device_name(self.device_index), f"{major}.{minor}"

    def network_from_onnx(self, builder: Any, onnx_path: Path) -> tuple[Any, Any]:
        trt = self.trt
        flags = 0
        # TensorRT 10 honours the graph's fp16 types only in a strongly typed network; in 11
        # every network is strongly typed and the flag may be gone.
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly is not None:
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BuildError(f"TensorRT could not parse {onnx_path.name}: {errors}")
        return network, parser

    def engine_from_network(self, builder: Any, network: Any, profile: cache.Profile,
                            multiple: int, timing_cache: Path) -> bytes:
        trt = self.trt
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE)
        prof = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            prof.set_shape(t.name, *profile_shapes(profile, multiple, int(t.shape[1])))
        config.add_optimization_profile(prof)
        blob = timing_cache.read_bytes() if timing_cache.exists() else b""
        tc = config.create_timing_cache(blob)
        if tc is None and blob:
            log.warning("timing cache %s is unreadable; starting a new one", timing_cache)
            tc = config.create_timing_cache(b"")
        config.set_timing_cache(tc, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BuildError("TensorRT failed to build the engine (see the messages above)")
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def build(self, onnx_path: Path, profile: cache.Profile, multiple: int, timing_cache: Path) -> bytes:
        builder = self.trt.Builder(self.logger)
        network, _parser = self.network_from_onnx(builder, onnx_path)  # parser owns weights
        return self.engine_from_network(builder, network, profile, multiple, timing_cache)

    def deserialize(self, data: bytes) -> Any:
        """The engine, or None when the plan does not load (other version/GPU, corrupt)."""
        if self._runtime is None:
            self._runtime = self.trt.Runtime(self.logger)
        try:
            return self._runtime.deserialize_cuda_engine(data)
        except Exception:
            log.debug("deserialize_cuda_engine raised", exc_info=True)
            return None


def save_engine(data: bytes, path: Path, key: cache.PlanKey, model: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    cache.write_sidecar(path, {
        "kind": "plan", "model": model, "precision": key.precision, "profile": key.profile.describe(),
        "trt_version": key.trt_version, "gpu": key.gpu_name, "compute_capability": key.compute_capability,
        "onnx_sha256": key.onnx_sha256, "builder_options": key.builder_options,
        "sha256": cache.sha256_file(path), "key": key.digest(),
    })
    return path


def timing_cache_path(directory: Path, ops: Any) -> Path:
    name, cc = ops.gpu()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return directory / f"timing-trt{ops.version}-{slug}-sm{cc}.cache"


@dataclass
class LoadedPlan:
    path: Path
    engine: Any
    built: bool  # False when it came from the cache


def ensure_plan(
    model: str,
    precision: str,
    profile: cache.Profile,
    onnx_path: Path,
    multiple: int,
    directory: Path,
    ops: Any,
    builder_options: dict[str, Any] | None = None,
    force: bool = False,
) -> LoadedPlan:
    """Load the cached plan for this exact key, or build (and cache) it.

    A plan whose bytes no longer match its record, or that TensorRT refuses to load, is
    rebuilt with a warning.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name, cc = ops.gpu()
    key = cache.PlanKey(
        onnx_sha256=cache.sha256_file(onnx_path), trt_version=ops.version, gpu_name=name,
        compute_capability=cc, profile=profile, precision=precision,
        builder_options=dict(builder_options or {"workspace": WORKSPACE}),
    )
    path = directory / key.filename(model)
    if path.exists() and not force:
        data = path.read_bytes()
        info = cache.read_sidecar(path)
        if info.get("sha256") != cache.sha256_bytes(data):
            log.warning("TensorRT plan %s does not match its record (corrupt or partly written); rebuilding", path.name)
        else:
            engine = ops.deserialize(data)
            if engine is not None:
                log.info("TensorRT plan from cache: %s", path)
                return LoadedPlan(path, engine, built=False)
            log.warning("TensorRT plan %s does not load with TensorRT %s on %s; rebuilding",
                        path.name, ops.version, name)
    log.info("building TensorRT plan for %s %s, profile %s (minutes on first build; the "
             "timing cache makes later builds faster)", model, precision, profile.describe())
    data = ops.build(onnx_path, profile, multiple, timing_cache_path(directory, ops))
    save_engine(data, path, key, model)
    engine = ops.deserialize(data)
    if engine is None:
        raise BuildError(f"TensorRT built {path.name} but cannot load it")
    return LoadedPlan(path, engine, built=True)

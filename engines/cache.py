"""Where exported ONNX files and TensorRT plans live, and the keys that name them.

A plan is only valid for the exact ONNX graph, TensorRT version, GPU model, compute
capability, profile, precision and builder options it was built with, so all of them go into
its key.  Each artefact has a ``.json`` sidecar with those components (``python -m engines
list`` prints them).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "DENOISE_STREAM_ENGINE_CACHE"


def cache_dir(override: str | Path | None = None) -> Path:
    """``override``, else $DENOISE_STREAM_ENGINE_CACHE, else ~/.cache/denoise-stream/engines."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "denoise-stream" / "engines"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile over frame sizes (H, W) and batch."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]
    batch: tuple[int, int, int] = (1, 1, 1)  # min, opt, max

    def __post_init__(self) -> None:
        for i in range(2):
            if not self.min[i] <= self.opt[i] <= self.max[i]:
                raise ValueError(f"profile needs min <= opt <= max, got {self.describe()}")

    def describe(self) -> str:
        def s(hw: tuple[int, int]) -> str:
            return f"{hw[1]}x{hw[0]}"

        b = "" if self.batch == (1, 1, 1) else f" batch {self.batch[0]}/{self.batch[1]}/{self.batch[2]}"
        return f"{s(self.min)}..{s(self.opt)}..{s(self.max)}{b}"

    def covers(self, b: int, h: int, w: int) -> bool:
        return (self.batch[0] <= b <= self.batch[2] and self.min[0] <= h <= self.max[0]
                and self.min[1] <= w <= self.max[1])


@dataclass(frozen=True)
class PlanKey:
    """Everything a TensorRT plan depends on."""

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    profile: Profile
    precision: str
    builder_options: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        return sha256_json(asdict(self))

    def filename(self, model: str) -> str:
        return f"{model}-{self.precision}-{self.digest()[:16]}.plan"


# Bumped when the exported graph changes for the same weights (2: folded stem; 3: int8
# weights in 7 bits, engines/quantize.py).
EXPORT_FORMAT = 3


def onnx_filename(model: str, precision: str, source_sha256: str) -> str:
    """``source_sha256``: hash of the weights and the model's config."""
    return f"{model}-{precision}-{source_sha256[:12]}-e{EXPORT_FORMAT}.onnx"


def write_sidecar(path: Path, info: dict[str, Any]) -> None:
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str))


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.with_suffix(path.suffix + ".json").read_text())
    except (OSError, ValueError):
        return {}


def entries(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(artefact, sidecar info) for every .onnx and .plan in ``directory``."""
    if not directory.is_dir():
        return []
    found = sorted(p for p in directory.iterdir() if p.suffix in (".onnx", ".plan"))
    return [(p, read_sidecar(p)) for p in found]

"""Engine test fixtures: seeded random-weight networks and their ONNX exports (made once)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_helpers import random_net


@pytest.fixture(scope="session")
def fast_net() -> torch.nn.Module:
    return random_net("fast")


@pytest.fixture(scope="session")
def onnx_export(tmp_path_factory: pytest.TempPathFactory):
    """export(model, precision) -> path of the random-weight ONNX graph (cached per session)."""
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install '.[onnx]')")
    from engines.export import export_onnx

    made: dict[tuple[str, str], Path] = {}
    root = tmp_path_factory.mktemp("onnx")

    def export(model: str, precision: str) -> Path:
        if (model, precision) not in made:
            made[model, precision] = export_onnx(
                model, precision, root / f"{model}-{precision}.onnx", net=random_net(model))
        return made[model, precision]

    return export


@pytest.fixture(autouse=True)
def _private_engine_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engine tests never write to the user's ~/.cache (one folder per test session)."""
    from engines.cache import ENV_VAR

    monkeypatch.setenv(ENV_VAR, str(tmp_path_factory.getbasetemp() / "engine-cache"))

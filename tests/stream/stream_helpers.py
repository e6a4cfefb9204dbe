"""Helpers shared by the tests of stream/ (the fixtures live in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import stream.openers


def quick_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Profiles under ``tmp_path``, and a calibration that replays its own references (no
    photo folder) and skips the forgetting check (no CBSD68): seconds, not minutes.  Returns
    the profiles folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import models.calibrate_tune as tune

    monkeypatch.setattr(tune, "replay_images", lambda m: (
        [torch.from_numpy(np.ascontiguousarray(s.reference)).permute(2, 0, 1) for s in m.samples], "refs"))
    monkeypatch.setattr(tune, "forgetting", lambda base, tuned: {})
    return tmp_path / "cache" / "denoise-stream" / "profiles"


def openers_spying_on_windows(windows: list[Any]) -> tuple[Any, ...]:
    """``stream.openers.SINK_OPENERS`` with the preview opener wrapped: each window opened is
    appended to ``windows`` (set it with monkeypatch, or in a fresh process)."""

    def spy(spec: str, run: Any, source: Any, controls: Any) -> Any:
        sink = stream.openers.open_preview(spec, run, source, controls)
        if sink is not None:
            windows.append(sink.window)
        return sink

    table = stream.openers.SINK_OPENERS
    return tuple(spy if opener is stream.openers.open_preview else opener for opener in table)

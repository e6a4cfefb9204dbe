"""Helpers shared by the tests of stream/ (the fixtures live in tests/conftest.py)."""
from __future__ import annotations

from typing import Any

import stream.openers


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

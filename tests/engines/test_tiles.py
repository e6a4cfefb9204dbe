"""Large pictures run in tiles (``engines.tiles``): the output is the whole frame's."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import engines
from engines import tiles

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("n", [1, 300, 2176, 2177, 3000, 4000, 9000])
def test_spans_tile_the_side_exactly(n):
    s = tiles.spans(n)
    assert s[0][2] == 0 and s[-1][3] == n
    for (a, b, keep, end), nxt in zip(s, s[1:] + [None]):
        assert a % tiles.ALIGN == 0 and 0 <= a <= keep < end <= b <= n
        assert b - a <= tiles.CORE + 2 * tiles.MARGIN
        assert keep - a >= min(tiles.MARGIN, keep) and (b - end >= tiles.MARGIN or b == n)
        if nxt is not None:
            assert nxt[2] == end


@pytest.mark.parametrize("model", ["fast", "base"])
def test_tiled_output_is_the_whole_frames(monkeypatch, model):
    pytest.importorskip("onnxruntime")
    img = cv2.imread(str(DATA / "astronaut_crop.png"))[..., ::-1]
    frame = np.ascontiguousarray(np.concatenate([np.concatenate([img] * 3, axis=1)] * 3))  # 576 x 768
    rng = np.random.default_rng(0)
    noisy = np.clip(frame + rng.normal(0, 15, frame.shape), 0, 255).astype(np.uint8)[None]
    level = np.full((1, *frame.shape[:2]), 15.0, np.float32)  # a map: cut with its tile
    eng = engines.open_engine(model, backend="onnxruntime", device="cpu")
    whole = eng.infer(noisy, level)
    monkeypatch.setattr(tiles, "ABOVE", 0)
    monkeypatch.setattr(tiles, "CORE", 256)
    calls: list[tuple[int, ...]] = []
    inner = eng._infer
    monkeypatch.setattr(eng, "_infer", lambda f, s, p: calls.append(f.shape) or inner(f, s, p))
    tiled = eng.infer(noisy, level)
    assert len(calls) == 9 and max(c[1] for c in calls) <= 256 + 2 * tiles.MARGIN
    diff = np.abs(tiled.astype(int) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3

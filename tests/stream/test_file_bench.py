"""python -m stream.bench on a tiny size: one row per size, every frame through."""
from __future__ import annotations

import json

from stream.bench import main


def test_bench_writes_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--sizes", "64x48,96x64", "--frames", "3", "--backend", "torch",
                 "--device", "cpu", "--sigma", "10", "--model", "fast", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["backend"] == "torch-cpu" and data["temporal"] in ("off", "auto", "light", "strong")
    assert [r["size"] for r in data["rows"]] == ["64x48", "96x64"]
    assert all(r["frames"] == 3 and r["fps"] > 0 and r["denoise_ms"] > 0 for r in data["rows"])
    text = capsys.readouterr().out
    assert "backend torch-cpu" in text and "96x64" in text


def test_bench_unknown_size(capsys):
    assert main(["--sizes", "huge"]) == 2
    assert "unknown size" in capsys.readouterr().err

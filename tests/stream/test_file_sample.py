"""The bundled sample clip and README's first command on it."""
from __future__ import annotations

from pathlib import Path

import pytest

from stream.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "stream" / "samples" / "sample.mp4"


def test_sample_is_small_and_has_sound(read):
    assert SAMPLE.stat().st_size < 2 * 1024 * 1024
    info = read(SAMPLE)
    assert info["size"] == (640, 360) and len(info["frames"]) == 96
    assert len(info["audio"]) > 100


@pytest.mark.slow
def test_readme_command_on_the_sample(tmp_path, read, ffprobe):
    out = tmp_path / "sample-denoised.mp4"
    assert main([str(SAMPLE), str(out), "--backend", "torch", "--preset", "ultrafast",
                 "--quiet"]) == 0
    a, b = read(SAMPLE), read(out)
    assert len(b["frames"]) == 96 and b["times"] == a["times"] and b["audio"] == a["audio"]
    assert ffprobe("-show_entries", "stream=codec_name,color_space", "-of", "csv=p=0",
                   str(out)).split() == ["h264,bt709", "aac"]

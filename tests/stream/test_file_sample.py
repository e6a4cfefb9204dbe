"""The bundled sample clip and README's first command on it."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

SAMPLE = ROOT / "stream" / "samples" / "sample.mp4"


def test_sample_is_small_and_has_sound(read):
    assert SAMPLE.stat().st_size < 2 * 1024 * 1024
    info = read(SAMPLE)
    assert info["size"] == (640, 360) and len(info["frames"]) == 96
    assert len(info["audio"]) > 100


def readme_first_command() -> str:
    """The command that ends README's install line, as written there."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.strip().rsplit(" && ", 1)[1]


@pytest.mark.slow
def test_readme_command_on_the_sample(tmp_path, read, ffprobe):
    """README's first command, word for word, in a folder holding a copy of the sample: the
    CLI's defaults (model fast, ONNX Runtime on the CPU, auto sigma, temporal auto)."""
    command = readme_first_command()
    assert command == "python -m stream stream/samples/sample.mp4 sample-denoised.mp4"
    (tmp_path / "stream" / "samples").mkdir(parents=True)
    shutil.copy(SAMPLE, tmp_path / "stream" / "samples" / "sample.mp4")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    words = shlex.split(command)
    assert words[0] == "python"
    res = subprocess.run([sys.executable, *words[1:]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    summary = res.stderr.strip().splitlines()[-1]
    assert summary.startswith("denoised 96 frames in ") and "model fast" in summary
    assert "backend onnxruntime-cpu" in summary and "sigma " in summary and "(auto)" in summary
    out = tmp_path / "sample-denoised.mp4"
    a, b = read(SAMPLE), read(out)
    assert len(b["frames"]) == 96 and b["times"] == a["times"] and b["audio"] == a["audio"]
    assert ffprobe("-show_entries", "stream=codec_name,color_space", "-of", "csv=p=0",
                   str(out)).split() == ["h264,bt709", "aac"]
    # it denoised: the output is smoother than the input (less high-frequency energy)
    def detail(frames):
        return float(np.mean([np.abs(np.diff(f.astype(np.int16), axis=1)).mean()
                              for f in frames]))

    assert detail(b["frames"]) < 0.95 * detail(a["frames"])

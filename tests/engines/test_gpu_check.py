"""The prepared GPU script runs (here on CPU) with only what the GPU machine has installed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Not on the lent GPU machine: importing any of these there would crash the one run.
ABSENT = ["av", "skimage", "onnx", "onnxscript", "onnxruntime", "tensorrt", "pyvirtualcam", "tqdm", "scipy"]


def test_gpu_check_smoke_without_optional_packages(tmp_path):
    out = tmp_path / "gpu.json"
    code = (
        "import sys\n"
        f"for m in {ABSENT!r}: sys.modules[m] = None\n"
        "from engines.gpu_check import main\n"
        f"sys.exit(main(['--device', 'cpu', '--sizes', '32x48', '--models', 'fast', '--no-compile', "
        f"'--json', {str(out)!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(out.read_text())
    variants = {row["variant"]: row for row in rep["speed"]}
    for v in ("eager fp32", "eager fp32 channels_last", "uint8 upload+download only",
              "engine infer (incl. copies)"):
        assert variants[v]["ms_median"] > 0 and variants[v]["size"] == "32x48", variants[v]
    acc = {(a["weights"], a["precision"]): a for a in rep["accuracy"]}
    assert acc["random", "bf16"]["psnr_vs_cpu_fp32_db"] >= 38
    assert acc["shipped", "bf16"]["psnr_vs_cpu_fp32_db"] >= 38
    assert "eager fp32" in r.stdout and "wrote" in r.stdout


def test_cuda_timings_alias_has_the_same_options():
    from engines import cuda_timings, gpu_check

    assert cuda_timings.main is gpu_check.main

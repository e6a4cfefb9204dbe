"""Backends agree through the product: `python -m stream photo.png out.png --backend B`."""
from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")
cv2 = pytest.importorskip("cv2")

from models.metrics import psnr


@pytest.mark.slow
@pytest.mark.data
def test_onnxruntime_vs_torch_on_real_photos_of_odd_sizes(data_dir, tmp_path):
    from stream.cli import main

    photos = sorted((data_dir / "bsds500" / "val").glob("*.jpg"))[:2]
    if not photos:
        pytest.skip("no BSDS500 photos")
    for i, photo in enumerate(photos):
        img = cv2.imread(str(photo))
        crop = img[: img.shape[0] - 2, : img.shape[1] - 4]  # 479x317 or 317x479: odd sides
        src = tmp_path / f"p{i}.png"
        cv2.imwrite(str(src), crop)
        outs = {}
        for backend in ("torch", "onnxruntime"):
            out = tmp_path / f"p{i}-{backend}.png"
            assert main([str(src), str(out), "--backend", backend, "--device", "cpu",
                         "--model", "fast", "--sigma", "25", "-q"]) == 0
            outs[backend] = cv2.imread(str(out))
        assert outs["torch"].shape == crop.shape
        assert psnr(outs["onnxruntime"], outs["torch"], 255) >= 45

"""The accuracy half of ``python -m engines.gpu_check``: the product path's outputs on the
device against the CPU fp32 ones, on a real photo (or a synthetic picture).  Needs only torch,
numpy, safetensors (OpenCV for a photo), like the rest of the check."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("engines.gpu_check")


def load_photo(path: str | None, max_hw: tuple[int, int] = (719, 1279)) -> tuple[np.ndarray, str]:
    """A real photo cropped to odd sizes (at most 719x1279), or a synthetic image."""
    if path:
        try:
            import cv2

            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is not None:
                img = bgr[..., ::-1]
                h = min(img.shape[0], max_hw[0]) - (1 - min(img.shape[0], max_hw[0]) % 2)
                w = min(img.shape[1], max_hw[1]) - (1 - min(img.shape[1], max_hw[1]) % 2)
                return np.ascontiguousarray(img[:h, :w]), f"{Path(path).name} crop {w}x{h}"
        except ImportError:
            pass
        log.warning("could not read %s; using a synthetic image", path)
    from .validate import synthetic_image

    img = (synthetic_image(321, 481) * 255).round().astype(np.uint8)
    return img, "synthetic 481x321"


def accuracy(models: list[str], dev: torch.device, photo: np.ndarray) -> list[dict[str, Any]]:
    """PSNR (dB) between uint8 outputs of the product path: device vs CPU fp32."""
    from models import create_model
    from models.metrics import psnr

    from .torch_backend import TorchEngine

    rng = np.random.default_rng(1)
    noisy = np.clip(photo + rng.normal(0, 25, photo.shape), 0, 255).round().astype(np.uint8)[None]
    sig = np.array([25.0], np.float32)
    precisions = ["fp16", "bf16", "fp32"] if dev.type == "cuda" else ["bf16"]
    rows = []
    for model in models:
        for weights in ("shipped", "random"):
            torch.manual_seed(0)
            net = create_model(model, pretrained=weights == "shipped")
            with TorchEngine(model, device="cpu", precision="fp32", net=net) as ref_eng:
                ref = ref_eng.infer(noisy, sig)
            for p in precisions:
                row: dict[str, Any] = {"model": model, "weights": weights, "precision": p,
                                       "device": str(dev)}
                try:
                    with TorchEngine(model, device=str(dev), precision=p, net=net) as eng:
                        got = eng.infer(noisy, sig)
                    row["psnr_vs_cpu_fp32_db"] = round(psnr(got, ref, 255), 2)
                    row["max_abs_diff_uint8"] = int(np.abs(got.astype(int) - ref).max())
                    row["psnr_vs_noisy_input_db"] = round(psnr(got, noisy, 255), 2)
                except Exception as e:  # noqa: BLE001 - recorded in the JSON, the run goes on
                    row["error"] = f"{type(e).__name__}: {e}"[:300]
                rows.append(row)
                log.info("%s", row)
    return rows

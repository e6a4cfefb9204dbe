"""``python -m models wiener-curve``: how much of the Wiener pass (``models.wiener``) each model takes.

For each model and level: 12 CBSD432 training photos (every 36th of the list; never the CBSD68
test photos) with white noise of that std (8-bit, clipped), denoised by the network told the
level; the Wiener estimate with the output as its pilot; and the share of the estimate's
difference from the pilot that fits the clean photos best (least squares over all of them,
capped at 1).  Prints PSNR for the network, the whole estimate and that share, and the
``SHARE`` entry the curve gives.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..data import DEFAULT_DATA, read_rgb, split_paths
from ..metrics import psnr
from ..registry import create_model
from ..wiener import wiener
from .evaluate import denoise

LEVELS = (2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 35.0, 50.0)


def fit(model: torch.nn.Module, photos: list[np.ndarray], level: float,
        seed: int = 0) -> tuple[float, float, float, float]:
    """(network PSNR, Wiener PSNR, best share, PSNR at that share) at ``level``."""
    rng = np.random.default_rng(seed)
    runs = []
    num = den = 0.0
    for clean in photos:
        noisy = np.clip(np.rint(clean + rng.normal(0, level, clean.shape)), 0, 255).astype(np.uint8)
        pilot = denoise(model, noisy, level).astype(np.float32)
        diff = wiener(noisy, pilot, level) - pilot
        num += float((diff * (clean - pilot)).sum())
        den += float((diff * diff).sum())
        runs.append((clean, pilot, diff))
    share = min(max(num / den, 0.0), 1.0) if den else 0.0

    def score(s: float) -> float:
        return float(np.mean([psnr(np.clip(np.rint(p + s * d), 0, 255), c, 255.0) for c, p, d in runs]))
    return score(0.0), score(1.0), share, score(share)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models wiener-curve", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fast", help="comma-separated models")
    p.add_argument("--levels", default=",".join(f"{v:g}" for v in LEVELS))
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = p.parse_args(argv)
    paths = split_paths(args.data, "cbsd432")[::36][:args.photos]
    photos = [read_rgb(path).astype(np.float32) for path in paths]
    levels = [float(v) for v in args.levels.split(",")]
    for name in args.model.split(","):
        model = create_model(name)
        points = []
        for level in levels:
            net, est, share, best = fit(model, photos, level)
            points.append((level, round(share, 2)))
            print(f"{name} sigma {level:g}: network {net:.2f}  Wiener {est:.2f}  "
                  f"share {share:.2f} -> {best:.2f} dB ({best - net:+.2f})", flush=True)
        print(f'    "{name}": {tuple(points)},')
    return 0

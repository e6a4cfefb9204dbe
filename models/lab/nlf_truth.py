"""How close the clip path's noise level function comes to the truth, per channel and bin.

    python -m models.lab.nlf_truth [FRAMES]     # FRAMES default 500 (20 s at 25 fps)

The camera and scene of ``calibrate_clip_eval`` (outside the training ranges).  Measured: what
``python -m stream calibrate`` measures on FRAMES frames (``models.calibrate.measure_clip``).
The truth: the first 64 of those frames around the mean of 160 other frames of the same camera
(the noise of the frames themselves, against a reference they did not make), binned and
counted the same way.  Prints both curves, their ratio and the bins within 10 %.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from models.calibrate import NlfAccumulator, measure_clip
from models.lab.calibrate_clip_eval import camera

OTHER = 160
TRUTH_FRAMES = 64


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(1)
    n = int(argv[0]) if argv else 500
    clean, noisy = camera()
    clip = np.stack([noisy(clean) for _ in range(n)])
    ref = np.mean([noisy(clean).astype(np.float64) for _ in range(OTHER)], axis=0).astype(np.float32)
    measured = measure_clip(clip, "clip").nlf
    acc = NlfAccumulator()
    for frame in clip[:TRUTH_FRAMES]:  # the reference's own noise taken out of the difference
        acc.add(ref, (frame.astype(np.float32) - ref) * np.float32(np.sqrt(OTHER / (OTHER + 1))))
    truth = acc.result()
    rel = measured.array() / truth.array() - 1
    ok = np.isfinite(rel)
    np.set_printoptions(linewidth=160, precision=2, suppress=True)
    for c, name in enumerate("RGB"):
        print(f"{name} truth    {truth.array()[c]}\n  measured {measured.array()[c]}")
    print(f"level: measured {measured.level():.2f}, truth {truth.level():.2f}; bins within 10 %: "
          f"{int((np.abs(rel[ok]) <= 0.1).sum())} of {int(ok.sum())}, largest miss "
          f"{float(np.abs(rel[ok]).max()):.1%}, median {float(np.median(np.abs(rel[ok]))):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

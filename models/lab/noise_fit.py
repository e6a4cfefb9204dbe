"""``python -m models noise-fit --pairs DIR``: how close is the synthetic camera noise to real noise?

For every real noisy/clean pair (PolyU: ``*_real`` / ``*_mean``) it measures the noise level
function: the std of (noisy - clean) per brightness bin.  It then fits the training synthesis
(``models.noise.camera``: Poisson-Gaussian in linear light on a Bayer mosaic, demosaicked, sRGB
curve) to each pair by grid search over (shot, read), and reports the fit error and whether the
fitted parameters fall inside the ranges the models were trained on.

Beyond the level it compares the noise's structure (``models.noise.correlations``): spatial
autocorrelation at lags 1-3 and the correlation between colour channels, real pairs against
the two syntheses (``camera`` and ``camera_isp``) on CBSD432 crops.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..data import DEFAULT_DATA, read_rgb, split_paths
from ..noise import camera, camera_isp, correlations, noise_level_function

BINS = 16
TRAIN_SHOT = (1e-4, 10 ** -1.7)  # models.training.noisy_batch ranges
TRAIN_READ = (10 ** -3.2, 10 ** -1.6)


def synthetic_nlf(shot: float, read: float, bins: int = BINS, seed: int = 0) -> np.ndarray:
    """NLF (0..255 units) of the synthesis on flat grey patches at each bin centre."""
    centres = (np.arange(bins) + 0.5) / bins
    x = torch.tensor(centres, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 48, 48).contiguous()
    noisy, _ = camera(x, shot, read, generator=torch.Generator().manual_seed(seed))
    return ((noisy - x) * 255).flatten(1).std(dim=1).numpy()


def fit(nlf: np.ndarray, grid: dict[tuple[float, float], np.ndarray]) -> tuple[float, float, float]:
    """Best (shot, read) for a measured NLF; returns (shot, read, rms error in 0..255 units)."""
    ok = np.isfinite(nlf)
    best = min(grid.items(), key=lambda kv: float(np.mean((kv[1][ok] - nlf[ok]) ** 2)))
    (shot, read), pred = best
    return shot, read, float(np.sqrt(np.mean((pred[ok] - nlf[ok]) ** 2)))


CORR_KEYS = ("lag1", "lag2", "lag3", "rg", "rb", "gb")


def synthetic_correlations(data: Path, n: int = 48, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median noise correlations of each synthesis on ``n`` 128 x 128 CBSD432 crops."""
    paths = split_paths(data, "cbsd432")[:n]
    n = len(paths)
    x = torch.stack([torch.from_numpy(read_rgb(p)[:128, :128].copy()).permute(2, 0, 1).float() / 255 for p in paths])
    gen = torch.Generator().manual_seed(seed)
    shot = 10 ** (torch.rand(n, generator=gen) * 2.3 - 4.0)
    read = 10 ** (torch.rand(n, generator=gen) * 1.6 - 3.2)
    out = {}
    for name, noisy in (("camera (Bayer + bilinear)", camera(x, shot, read, generator=gen)[0]),
                        ("camera_isp (replayed pipeline)", camera_isp(x, gen)[0])):
        rows = [correlations(((noisy[i] - x[i]) * 255).permute(1, 2, 0).numpy()) for i in range(n)]
        out[name] = {k: float(np.median([r[k] for r in rows])) for k in CORR_KEYS}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models noise-fit", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=Path, required=True, help="folder of *_real / *_mean image pairs")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="for the synthetic side of the correlations")
    args = p.parse_args(argv)
    reals = sorted(q for q in args.pairs.glob("*") if "_real" in q.stem)[: args.limit] if args.pairs.is_dir() else []
    if not reals:
        print(f"error: no *_real images in {args.pairs}", file=sys.stderr)
        return 2
    shots = np.geomspace(1e-5, 5e-2, 16)
    reads = np.geomspace(1e-4, 5e-2, 16)
    grid = {(float(s), float(r)): synthetic_nlf(s, r) for s in shots for r in reads}
    rows = []
    for q in reals:
        clean = read_rgb(q.with_name(q.name.replace("_real", "_mean")))
        _, nlf = noise_level_function(clean, read_rgb(q), BINS)
        shot, read, rms = fit(nlf, grid)
        corr = correlations(read_rgb(q).astype(np.float64) - clean)
        rows.append({"pair": q.stem, "corr": corr, "nlf": [None if np.isnan(v) else round(float(v), 2) for v in nlf],
                     "shot": shot, "read": read, "rms": rms, "mean_std": float(np.nanmean(nlf)),
                     "in_training_range": TRAIN_SHOT[0] <= shot <= TRAIN_SHOT[1] and read <= TRAIN_READ[1]})
    rms = np.array([r["rms"] for r in rows])
    inside = np.mean([r["in_training_range"] for r in rows])
    level = np.array([r["mean_std"] for r in rows])
    print(f"{len(rows)} real pairs from {args.pairs}")
    print(f"  measured noise std: median {np.median(level):.2f}, range {level.min():.2f}..{level.max():.2f} (0..255)")
    print(f"  synthesis fitted per pair: rms error of the noise level function {np.median(rms):.2f} median, "
          f"{np.percentile(rms, 90):.2f} at the 90th percentile (0..255 units)")
    print(f"  fitted (shot, read) inside the training ranges for {inside:.0%} of pairs")
    shots_f = np.array([r["shot"] for r in rows])
    reads_f = np.array([r["read"] for r in rows])
    print(f"  fitted shot median {np.median(shots_f):.2e}, read median {np.median(reads_f):.2e}")
    table = {f"real pairs ({len(rows)})": {k: float(np.median([r["corr"][k] for r in rows])) for k in CORR_KEYS}}
    table |= synthetic_correlations(args.data)
    print("  noise structure, medians (autocorrelation at lags 1-3; correlation between channels):")
    print(f"  {'':<34}" + "".join(f"{k:>7}" for k in CORR_KEYS))
    for name, r in table.items():
        print(f"  {name:<34}" + "".join(f"{r[k]:7.2f}" for k in CORR_KEYS))
    if args.json:
        args.json.write_text(json.dumps({"pairs": rows, "median_rms": float(np.median(rms)), "inside": float(inside),
                                         "correlations": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Search the calibration recipe on the tune half of real pairs only, leaving scenes out.

    python -m models.lab.calibrate_search --pairs ../shared/data/realnoise/polyu \
        --config '{"steps": 700}' --json runs/calib/search-700.json

For each camera its tune-half scenes (``models.data.pair_paths``) are split again,
alternately, into a part to calibrate on and a part to validate on; the model (``fast``) is
fine-tuned in-process with ``models.calibrate_tune.TuneConfig(**config)`` on the first and
scored on the second (torch, the blind-estimate map), against the untuned model; then CBSD68
at sigma 25 (the first 12 photos, told the level) of each tuned weights: what was forgotten.
The test half is never read, so the recipe can be chosen here and reported there
(``models.lab.calibrate_eval``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..calibrate import camera_of, measure_pairs
from ..calibrate_tune import TuneConfig, finetune, prepare, replay_images, run_model
from ..data import DEFAULT_DATA, pair_paths, read_rgb, scene_of, split_paths
from ..estimate import estimator_for
from ..metrics import psnr
from ..registry import create_model


def tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.lab.calibrate_search", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--model", default="fast")
    p.add_argument("--config", default="{}", help="TuneConfig fields as JSON")
    p.add_argument("--cameras", default=None, help="comma-separated (default all)")
    p.add_argument("--cbsd68", type=int, default=12, help="CBSD68 photos for the forgetting check")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TuneConfig(**json.loads(args.config))
    est = estimator_for(args.model)
    base = create_model(args.model).eval()
    tune = pair_paths(args.pairs, "tune")
    cameras = sorted({camera_of(n) for n, _ in tune})
    if args.cameras:
        cameras = [c for c in cameras if c in args.cameras.split(",")]
    report: dict = {"config": dataclasses.asdict(cfg), "cameras": {}}
    tuned_states = {}
    replay = None
    for cam in cameras:
        mine = [(n, c) for n, c in tune if camera_of(n) == cam]
        scenes = sorted({scene_of(n) for n, _ in mine})
        if len(scenes) < 2:
            print(f"{cam}: one scene in the tune half, skipped")
            continue
        fit = [pc for pc in mine if scene_of(pc[0]) in set(scenes[0::2])]
        val = [pc for pc in mine if scene_of(pc[0]) in set(scenes[1::2])]
        m = measure_pairs(fit, f"{args.pairs} camera {cam}, tune half, fit part")
        if replay is None:
            replay, _ = replay_images(m)
        tuned, info = finetune(base, prepare(m.samples, m, est), replay, m.nlf, cfg)
        before, after = [], []
        for n, c in val:
            noisy, clean = read_rgb(n), tensor(read_rgb(c))
            level = float(est(noisy)) / 255
            before.append(psnr(run_model(base, tensor(noisy), level), clean))
            after.append(psnr(run_model(tuned, tensor(noisy), level), clean))
        row = {"fit_pairs": len(fit), "val_pairs": len(val), "untuned": float(np.mean(before)),
               "tuned": float(np.mean(after)), "gain": float(np.mean(after) - np.mean(before)),
               "minutes": info["minutes"]}
        report["cameras"][cam] = row
        tuned_states[cam] = tuned.state_dict()
        print(f"{cam}: fit {len(fit)} / validate {len(val)} pairs, {row['untuned']:.2f} -> {row['tuned']:.2f} dB "
              f"({row['gain']:+.2f}), {row['minutes']:.1f} min", flush=True)
    gen = torch.Generator().manual_seed(1234)
    net = create_model(args.model).eval()
    forgot: dict[str, list[float]] = {"original": []}
    for path in split_paths(DEFAULT_DATA, "cbsd68")[:args.cbsd68] if args.cbsd68 else []:
        x = tensor(read_rgb(path))
        noisy = x + torch.randn(x.shape, generator=gen) * 25 / 255
        forgot["original"].append(psnr(run_model(base, noisy, 25 / 255), x))
        for cam, state in tuned_states.items():
            net.load_state_dict(state)
            forgot.setdefault(cam, []).append(psnr(run_model(net, noisy, 25 / 255), x))
    report["cbsd68_sigma25"] = {k: float(np.mean(v)) for k, v in forgot.items() if v}
    report["mean_gain"] = float(np.mean([r["gain"] for r in report["cameras"].values()]))
    print(f"mean gain over cameras {report['mean_gain']:+.2f} dB; CBSD68 sigma 25 (first {args.cbsd68}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["cbsd68_sigma25"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure camera calibration on real pairs, leaving scenes out, through the product.

    python -m models.lab.calibrate_eval --pairs ../shared/data/realnoise/polyu --out runs/calib \
        --steps 1000 --json runs/calib/result.json

For each camera (file name prefix) of the pairs: ``python -m stream calibrate --pairs DIR
--camera C --half tune`` (the tune half of the scenes, ``models.data.pair_paths``), then the
camera's test-half noisy crops as one folder of PNGs through ``python -m stream noisy/ out/
--temporal off`` without a profile (the shipped default) and with the profile, its noise map
forced to the blind estimate and to the NLF; PSNR against the clean means.  Also OpenCV NLM at
its best h for the set, and CBSD68 at sigma 25 (all 68 photos, told the level) of the original
and each tuned weights: what was forgotten.  Of the shipped weights only ``base`` learnt from
PolyU: its last run replays the tune half's noise (``models.noise_bank``), never the test
half's.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from ..calibrate import camera_of
from ..data import pair_paths, read_rgb
from ..metrics import psnr

log = logging.getLogger("models.lab.calibrate_eval")
NLM_H = (3.0, 4.0, 5.0)  # PolyU's best h for fast's test half is 4 (README)


def run(cmd: list[str], env: dict[str, str]) -> None:
    log.info("$ %s", " ".join(cmd))
    subprocess.run(cmd, env=env, check=True)


def product_psnr(noisy_dir: Path, out_dir: Path, clean: dict[str, np.ndarray], env: dict[str, str],
                 extra: list[str]) -> dict[str, float]:
    shutil.rmtree(out_dir, ignore_errors=True)
    run([sys.executable, "-m", "stream", str(noisy_dir) + "/", str(out_dir) + "/", "--temporal", "off",
         "--threads", "1", "-q", *extra], env)
    return {name: psnr(read_rgb(out_dir / f"{name}.png"), ref, 255.0) for name, ref in clean.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.lab.calibrate_eval", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("runs/calib"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--cameras", default=None, help="comma-separated (default all)")
    p.add_argument("--cbsd68", type=int, default=68, help="CBSD68 photos for the forgetting check")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    out = args.out.resolve()
    env = {**os.environ, "XDG_CACHE_HOME": str(out / "cache"), "OMP_NUM_THREADS": "1"}
    tune, test = pair_paths(args.pairs, "tune"), pair_paths(args.pairs, "test")
    cameras = sorted({camera_of(n) for n, _ in test} & {camera_of(n) for n, _ in tune})
    if args.cameras:
        cameras = [c for c in cameras if c in args.cameras.split(",")]
    report: dict = {"steps": args.steps, "cameras": {}}
    nlm_scores: dict[float, list[float]] = {h: [] for h in NLM_H}
    for cam in cameras:
        pairs = [(n, c) for n, c in test if camera_of(n) == cam]
        noisy_dir = out / "test" / cam / "noisy"
        noisy_dir.mkdir(parents=True, exist_ok=True)
        clean = {}
        for n, c in pairs:
            name = n.stem
            cv2.imwrite(str(noisy_dir / f"{name}.png"), read_rgb(n)[..., ::-1])
            clean[name] = read_rgb(c)
        name = f"polyu-{cam}"
        run([sys.executable, "-m", "stream", "calibrate", "--pairs", str(args.pairs), "--camera", cam,
             "--half", "tune", "--name", name, "--steps", str(args.steps), "-y"], env)
        folder = out / "cache" / "denoise-stream" / "profiles" / name
        prof = json.loads((folder / "profile.json").read_text())
        for variant in ("estimate", "nlf"):  # the same weights, each noise map
            vdir = folder.parent / f"{name}-{variant}"
            shutil.rmtree(vdir, ignore_errors=True)
            shutil.copytree(folder, vdir)
            (vdir / "profile.json").write_text(json.dumps({**prof, "name": vdir.name, "noise_map": variant}))
        rows = {
            "noisy": {k: psnr(read_rgb(noisy_dir / f"{k}.png"), v, 255.0) for k, v in clean.items()},
            "default": product_psnr(noisy_dir, out / "test" / cam / "default", clean, env, []),
            "profile_estimate": product_psnr(noisy_dir, out / "test" / cam / "est", clean, env,
                                             ["--profile", f"{name}-estimate"]),
            "profile_nlf": product_psnr(noisy_dir, out / "test" / cam / "nlf", clean, env,
                                        ["--profile", f"{name}-nlf"]),
        }
        for h in NLM_H:
            from .evaluate import nlm

            scores = [psnr(nlm(read_rgb(noisy_dir / f"{k}.png"), h), v, 255.0) for k, v in clean.items()]
            nlm_scores[h] += scores
            rows[f"nlm_h{h:g}"] = dict(zip(clean, scores))
        summary = {k: float(np.mean(list(v.values()))) for k, v in rows.items()}
        report["cameras"][cam] = {"test_pairs": len(pairs), "tune_pairs": prof["used"],
                                  "chosen_map": prof["noise_map"], "profile": prof["gains"],
                                  "minutes": prof["minutes"], "level": prof["nlf"], "mean": summary,
                                  "per_pair": rows}
        log.info("%s: %s", cam, ", ".join(f"{k} {v:.2f}" for k, v in summary.items()))
    best_h = max(NLM_H, key=lambda h: np.mean(nlm_scores[h]))
    report["nlm_best_h"] = best_h
    # forgetting: CBSD68 sigma 25 (standard protocol, told the level) of each tuned weights
    from contextlib import ExitStack

    from engines import open_engine

    from ..data import DEFAULT_DATA, split_paths
    from .evaluate import eval_synthetic

    paths = split_paths(DEFAULT_DATA, "cbsd68")[:args.cbsd68]
    with ExitStack() as engines:
        weights = {"fast": None} | {cam: out / "cache" / "denoise-stream" / "profiles" / f"polyu-{cam}"
                                    / "weights.safetensors" for cam in cameras}
        nets = {k: engines.enter_context(open_engine("fast", backend="torch", device="cpu", weights=w, threads=1))
                for k, w in weights.items()}
        report["cbsd68_sigma25"] = {k: v["psnr"] for k, v in
                                    eval_synthetic(nets, paths, [25.0], set(), 0)["25"].items() if k != "n"}
    report["cbsd68_n"] = len(paths)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def print_table(report: dict) -> None:
    h = report["nlm_best_h"]
    cols = ("noisy", "default", "profile_estimate", "profile_nlf", f"nlm_h{h:g}")
    print("camera (test pairs) | " + " | ".join(cols) + " | gain (estimate) | gain (nlf) | CBSD68 s25")
    gains_e, gains_n = [], []
    for cam, r in report["cameras"].items():
        m = r["mean"]
        ge, gn = m["profile_estimate"] - m["default"], m["profile_nlf"] - m["default"]
        gains_e.append(ge), gains_n.append(gn)
        print(f"{cam} ({r['test_pairs']}) | " + " | ".join(f"{m[c]:.2f}" for c in cols)
              + f" | {ge:+.2f} | {gn:+.2f} | {report['cbsd68_sigma25'].get(cam, float('nan')):.2f}")
    print(f"mean over cameras | gain (estimate) {np.mean(gains_e):+.2f} | gain (nlf) {np.mean(gains_n):+.2f}"
          f" | CBSD68 s25 original {report['cbsd68_sigma25']['fast']:.2f} (n={report['cbsd68_n']})")


if __name__ == "__main__":
    raise SystemExit(main())

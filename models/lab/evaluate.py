"""``python -m models eval``: PSNR/SSIM per sigma under the standard protocol, baselines alongside.

Protocol (../shared/data/README.md): white Gaussian noise of std sigma (0..255 units) added to
the clean image in floating point, unclipped; the denoised output rounded to 8 bits; PSNR on
8-bit RGB.  OpenCV's NLM needs 8-bit input, so it gets the clipped, rounded noisy image (said in
the table).  CBM3D gets the unclipped image.  ``--pairs`` evaluates real noisy/clean pairs with
the noise level estimated from each noisy image (``auto``).

The networks run through the product's engine (``engines.open_engine``; by default torch on the
CPU in fp32, ``--backend``/``--device`` for another), the unclipped float input through
``Engine.infer_float``, so the numbers are the product's.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from engines import BACKENDS, Engine, EngineError, open_engine, phase_split

from .. import estimate_net
from ..data import DEFAULT_DATA, folder_paths, pair_paths, read_rgb, split_paths
from ..estimate import coarseness, combine, estimate, estimate_sigma, method_for
from ..metrics import psnr, ssim
from ..registry import get_spec
from ..wiener import second_pass, share_for, split_pass

log = logging.getLogger("models.eval")


def denoise(net: Engine | torch.nn.Module, noisy: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Denoise one (H, W, 3) image (uint8, or float 0..255 unclipped) at a noise level (a
    number or an (H, W) map, 0..255 units); returns uint8.  ``net`` is an engine (what ``models
    eval`` runs) or a bare module (the lab's pictures and tests; the same arithmetic as the
    torch engine's)."""
    if isinstance(net, Engine):
        sig = np.asarray(sigma, dtype=np.float32)
        sig = sig[None] if sig.ndim == 2 else sig.reshape(1)
        if noisy.dtype == np.uint8:
            return net.infer(noisy[None], sig)[0]
        return net.infer_float(np.ascontiguousarray(noisy, dtype=np.float32)[None], sig)[0]
    x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).permute(2, 0, 1)[None] / 255
    s = torch.as_tensor(np.asarray(sigma, dtype=np.float32) / 255)
    smap = s.reshape(1, 1, *s.shape[-2:]) if s.dim() >= 2 else s.expand(1, 1, *x.shape[-2:])
    with torch.inference_mode():
        y = net(x, smap.expand(1, 1, *x.shape[-2:]))
    return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()


def denoise_coarse(net: Engine | torch.nn.Module, name: str, noisy: np.ndarray, sigma: float,
                   learned: float | None = None) -> tuple[np.ndarray, str]:
    """``denoise`` as ``python -m stream`` runs it with ``--coarse-noise auto``: blended with
    the 2 x 2 phase split (and the helper network's split) where the frame's noise reads
    coarse (``engines.phase_split``), the sub-images told ``split_level`` of the ``learned``
    reading (and the frame's PCA reading) where given (an estimated level); with the Wiener
    pass a file job runs (``models.wiener``: after the network on white noise,
    after the sub-images' on coarse).  Returns the output and the mode used."""
    mode = phase_split.auto_mode(coarseness(noisy))
    if mode == "off":
        out = denoise(net, noisy, sigma)
        return second_pass(name, noisy, out, sigma), mode

    def infer_with(engine: Engine | torch.nn.Module, model: str | None = None) -> phase_split.Infer:
        """The network on each frame; with ``model``, the Wiener pass after it as the
        product's sub-images get it (``models.wiener.split_pass``)."""
        def run(frames: np.ndarray, level: np.ndarray) -> np.ndarray:
            outs = np.stack([denoise(engine, f, lv) for f, lv in zip(frames, level)])
            return split_pass(model, frames, outs, level) if model else outs
        return run

    helper = phase_split.helper_for(name)
    factor = phase_split.level_factor(method_for(name))
    split = None if learned is None else phase_split.split_level(learned, estimate(noisy, "pca"))
    return phase_split.run(infer_with(net), noisy[None], np.array([sigma], np.float32), mode, factor,
                           infer_with(_helper(helper), helper) if helper else None, split,
                           infer_with(net, name))[0], mode


@functools.cache
def _helper(name: str) -> Engine:
    """The coarse-noise blend's helper network, as ``python -m stream`` opens it (here on
    torch on the CPU, the evaluation's default; kept for the process)."""
    return open_engine(name, backend="torch", device="cpu")


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def nlm(noisy_u8: np.ndarray, h: float) -> np.ndarray:
    import cv2

    bgr = cv2.fastNlMeansDenoisingColored(noisy_u8[..., ::-1].copy(), None, h, h, 7, 21)
    return bgr[..., ::-1]


def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    out = bm3d.bm3d_rgb(noisy / 255.0, sigma / 255.0)
    return to_u8(out * 255)


def _score(results: dict, key: str, clean: np.ndarray, out: np.ndarray) -> None:
    results.setdefault(key, {"psnr": [], "ssim": []})
    results[key]["psnr"].append(psnr(out, clean, 255.0))
    results[key]["ssim"].append(ssim(out, clean))


def eval_synthetic(models: dict[str, Engine], paths: list[Path], sigmas: list[float],
                   baselines: set[str], bm3d_limit: int) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for sigma in sigmas:
        res: dict[str, dict] = {}
        # NLM's best h: searched on the first images, then used for all (OpenCV default search).
        best_h = None
        if "nlm" in baselines:
            probe = paths[: min(4, len(paths))]
            grid = [round(sigma * f, 1) for f in (0.45, 0.6, 0.75, 0.9)]
            scores = {h: np.mean([psnr(nlm(to_u8(add_noise(read_rgb(p), sigma, i)), h), read_rgb(p), 255.0)
                                  for i, p in enumerate(probe)]) for h in grid}
            best_h = max(scores, key=scores.get)
        for i, p in enumerate(paths):
            clean = read_rgb(p)
            noisy = add_noise(clean, sigma, seed=i)
            _score(res, "noisy (unclipped)", clean, to_u8(noisy))
            for name, model in models.items():
                out = denoise(model, noisy, sigma)
                _score(res, name, clean, out)
                if share_for(name, sigma) > 0:  # what a file job runs on white noise (``models.wiener``)
                    _score(res, f"{name} + Wiener", clean, second_pass(name, noisy, out, sigma))
                if i < bm3d_limit and "bm3d" in baselines:
                    _score(res, f"{name} (first {bm3d_limit})", clean, out)
            if best_h is not None:
                _score(res, f"OpenCV NLM h={best_h} (8-bit input)", clean, nlm(to_u8(noisy), best_h))
            if "bm3d" in baselines and i < bm3d_limit:
                _score(res, f"CBM3D (first {bm3d_limit})", clean, cbm3d(noisy, sigma))
            log.info("sigma %g: %d/%d images", sigma, i + 1, len(paths))
        table[f"{sigma:g}"] = {k: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(d["psnr"])}
                               for k, d in res.items()}
    return table


SIGMA_GRID = (2.0, 4.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0)
H_GRID = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)


def all_readings(noisy: np.ndarray) -> dict[str, float]:
    """Every noise reading of a frame (``models.estimate.METHODS`` less ``auto``), each
    model's own among them; ``combined`` from the other two as ``estimate`` makes it."""
    out = {"pca": estimate_sigma(noisy)}
    if estimate_net.available():
        out["net"] = estimate(noisy, "net")
        out["combined"] = combine(out["net"], out["pca"])
    return out


def scale_noise(noisy: np.ndarray, clean: np.ndarray, k: float) -> np.ndarray:
    """A pair's real noise scaled ``k`` times: clean + k (noisy - clean), rounded to 8 bits (a
    stand-in for heavier noise of the same structure, e.g. a phone's in low light)."""
    if k == 1.0:
        return noisy
    return to_u8(clean.astype(np.float32) + np.float32(k) * (noisy.astype(np.float32) - clean))


def eval_pairs(models: dict[str, Engine], folder: Path, limit: int | None, half: str = "all",
               baselines: frozenset[str] = frozenset({"nlm"}), bm3d_limit: int = 0,
               noise_scale: float = 1.0) -> dict[str, object]:
    """Real noisy/clean pairs: each model with the auto noise level (the product's default:
    ``estimate_sigma`` of the noisy image) and at the fixed level best for the whole set
    (searched over ``SIGMA_GRID``), OpenCV NLM at its best h (``H_GRID``), CBM3D at the
    estimated level on the first ``bm3d_limit`` pairs; with ``noise_scale`` k, each pair's
    noise scaled k times (``scale_noise``) and both grids with it.  Returns per-pair rows and
    means."""
    pairs = pair_paths(folder, half)[:limit]
    sigma_grid = tuple(sorted({min(sg * noise_scale, 75.0) for sg in SIGMA_GRID}))  # the trained range
    h_grid = tuple(h * noise_scale for h in H_GRID)
    rows: list[dict[str, object]] = []
    for noisy_path, clean_path in pairs:
        clean = read_rgb(clean_path)
        noisy = scale_noise(read_rgb(noisy_path), clean, noise_scale)
        readings = all_readings(noisy)
        est = readings.get("net", readings["pca"])
        row: dict[str, object] = {"pair": noisy_path.stem, "estimated_sigma": round(est, 2),
                                  "readings": {k: round(v, 2) for k, v in readings.items()},
                                  "noisy": (psnr(noisy, clean, 255.0), ssim(noisy, clean))}
        for name, model in models.items():
            own = method_for(name)
            for method, level in readings.items():
                out = denoise(model, noisy, level)
                key = f"{name} auto, no split" if method == own else f"{name} auto ({method})"
                row[key] = (psnr(out, clean, 255.0), ssim(out, clean))
            out, row["coarse"] = denoise_coarse(model, name, noisy, readings[own], readings.get("net"))
            row[f"{name} auto"] = (psnr(out, clean, 255.0), ssim(out, clean))
            for sg in sigma_grid:
                row[f"{name} sigma {sg:g}"] = (psnr(denoise(model, noisy, sg), clean, 255.0),)
        if "nlm" in baselines:
            for h in h_grid:
                row[f"nlm h {h:g}"] = (psnr(nlm(noisy, h), clean, 255.0),)
        if "bm3d" in baselines and len(rows) < bm3d_limit:
            out = cbm3d(noisy.astype(np.float64), max(est, 1.0))
            row["CBM3D (estimated sigma)"] = (psnr(out, clean, 255.0), ssim(out, clean))
        rows.append(row)
        log.info("%s: %s", noisy_path.stem, {k: round(v[0], 2) for k, v in row.items() if isinstance(v, tuple) and "sigma " not in k and " h " not in k})

    def mean(key: str, i: int = 0, of: list = rows) -> float:
        return float(np.mean([r[key][i] for r in of if key in r]))

    table: dict[str, dict] = {"noisy": {"psnr": mean("noisy"), "ssim": mean("noisy", 1)}}
    for name in models:
        table[f"{name} (auto sigma: {method_for(name)})"] = {"psnr": mean(f"{name} auto"), "ssim": mean(f"{name} auto", 1)}
        table[f"{name} (auto sigma, --coarse-noise off)"] = {"psnr": mean(f"{name} auto, no split"),
                                                            "ssim": mean(f"{name} auto, no split", 1)}
        for other in sorted(set(rows[0]["readings"]) - {method_for(name)}):
            if f"{name} auto ({other})" in rows[0]:
                table[f"{name} (auto sigma, {other} reading instead)"] = {"psnr": mean(f"{name} auto ({other})")}
        best = max(sigma_grid, key=lambda sg: mean(f"{name} sigma {sg:g}"))
        table[f"{name} (best fixed sigma {best:g})"] = {"psnr": mean(f"{name} sigma {best:g}")}
    if "nlm" in baselines:
        best_h = max(h_grid, key=lambda h: mean(f"nlm h {h:g}"))
        table[f"OpenCV NLM (best h {best_h:g})"] = {"psnr": mean(f"nlm h {best_h:g}")}
    cb = [r for r in rows if "CBM3D (estimated sigma)" in r]
    if cb:
        n = len(cb)
        table[f"CBM3D, first {n}"] = {"psnr": mean("CBM3D (estimated sigma)", of=cb),
                                      "ssim": mean("CBM3D (estimated sigma)", 1, of=cb)}
        for name in models:
            table[f"{name} (auto sigma), first {n}"] = {"psnr": mean(f"{name} auto", of=cb)}
    table["coarse noise (blended with the phase split)"] = {"pairs": float(sum(r["coarse"] == "blend" for r in rows))}
    for method in rows[0]["readings"]:
        table[f"estimated sigma, {method}"] = {"mean": float(np.mean([r["readings"][method] for r in rows]))}
    return table | {"n": len(rows), "half": half, "noise_scale": noise_scale, "per_pair": rows}


def eval_camera(models: dict[str, Engine], paths: list[Path], shot: tuple[float, float],
                nlm_h: tuple[float, ...] = (), seed: int = 7) -> dict[str, dict]:
    """Camera noise after a phone's or webcam's processing (``models.noise.camera_isp``, the
    replayed pipeline of the training mix: one seeded camera per image at a shot gain drawn
    log-uniformly from ``shot``, every other one JPEG'd), 8-bit noisy images: each model at its
    own auto reading (what the product gives it), at the other readings, and told the noise's
    true std; NLM at its best h of ``nlm_h``.  Heavy noise of this kind (shot 5e-3..2e-2: std
    about 15 to 40 levels) is where low-light phone footage lies."""
    from ..noise import camera_isp, sample_isp

    gen = torch.Generator().manual_seed(seed)
    res: dict[str, dict] = {}
    levels: dict[str, list[float]] = {}
    for i, p in enumerate(paths):
        clean = read_rgb(p)
        x = torch.from_numpy(clean).permute(2, 0, 1)[None].float() / 255
        noisy_t, std = camera_isp(x, gen, cams=[sample_isp(gen, shot)], jpeg_share=float(i % 2 == 0))
        noisy = (noisy_t[0].permute(1, 2, 0) * 255).round().byte().numpy()
        true = float(std[0, 0, 0, 0]) * 255
        readings = all_readings(noisy) | {"true": true}
        for k, v in readings.items():
            levels.setdefault(k, []).append(v)
        _score(res, "noisy", clean, noisy)
        for name, model in models.items():
            own = method_for(name)
            for method, level in readings.items():
                key = (f"{name} (auto: {method})" if method == own else
                       f"{name} (told the true std)" if method == "true" else f"{name} ({method} reading instead)")
                _score(res, key, clean, denoise(model, noisy, level))
            out, mode = denoise_coarse(model, name, noisy, readings[own], readings.get("net"))
            _score(res, f"{name} (auto: {own}, --coarse-noise auto)", clean, out)
            levels.setdefault(f"{name} split", []).append(float(mode != "off"))
        for h in nlm_h:
            _score(res, f"nlm h {h:g}", clean, nlm(noisy, h))
    table = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in res.items()}
    if nlm_h:
        best_h = max(nlm_h, key=lambda h: table[f"nlm h {h:g}"]["psnr"])
        table = {k: v for k, v in table.items() if not k.startswith("nlm h ")} | {
            f"OpenCV NLM (best h {best_h:g})": table[f"nlm h {best_h:g}"]}
    table["levels"] = {k: float(np.mean(v)) for k, v in levels.items()}
    return table | {"n": len(paths), "shot": list(shot)}


def eval_estimator(paths: list[Path], sigmas: list[float], method: str = "auto") -> dict[str, dict]:
    """Error of ``models.estimate.estimate(method)`` on white noise (unclipped, like the table)."""
    out = {}
    for sigma in sigmas:
        errs = [estimate(to_u8(add_noise(read_rgb(p), sigma, seed=i)) if method == "net"
                         else add_noise(read_rgb(p), sigma, seed=i), method) - sigma for i, p in enumerate(paths)]
        out[f"{sigma:g}"] = {"bias": float(np.mean(errs)), "mae": float(np.mean(np.abs(errs)))}
    return out


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    for name, r in rows.items():
        if isinstance(r, dict):
            cells = "  ".join(f"{k} {v:.4f}" if k == "ssim" else f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in r.items())
            print(f"  {name:<44} {cells}")


def shot_range(text: str) -> tuple[float, float]:
    """``LO,HI`` shot gains for ``--camera-noise`` (0 < LO <= HI)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI shot gains such as 5e-3,2e-2, got {text!r}") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 < LO <= HI, got {text!r}")
    return lo, hi


def noise_scale(text: str) -> float:
    try:
        k = float(text)
    except ValueError:
        k = float("nan")
    if not 0 < k <= 20:
        raise argparse.ArgumentTypeError(f"expected a factor 0 < K <= 20, got {text!r}")
    return k


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models eval", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="base", help="comma-separated registered names")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="engine the networks run on (default torch: the reference numbers)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--images", type=Path, default=None, help="folder of clean images (default: CBSD68)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--sigma", default="15,25,50")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--bm3d-limit", type=int, default=4, help="CBM3D on the first N images (slow)")
    p.add_argument("--baselines", default="nlm,bm3d", help="comma list of nlm,bm3d or 'none'")
    p.add_argument("--pairs", type=Path, default=None, help="folder of *_real/*_mean pairs (auto sigma)")
    p.add_argument("--half", choices=("all", "tune", "test"), default="all",
                   help="of --pairs: the scene-split half (tune on one, report the other)")
    p.add_argument("--noise-scale", default=1.0, metavar="K", type=noise_scale,
                   help="with --pairs: each pair's real noise scaled K times (clean + K (noisy - clean), "
                        "8-bit), a stand-in for heavier noise of the same structure")
    p.add_argument("--camera-noise", default=None, metavar="LO,HI", type=shot_range,
                   help="also phone-like camera noise (the replayed pipeline), shot gains LO..HI, e.g. 5e-3,2e-2")
    p.add_argument("--estimator", action="store_true", help="also report the noise estimator's error")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--record", action="store_true",
                   help="store the CBSD68 PSNR per sigma in the model cards (models/weights/NAME.json)")
    return p


def record(report: dict, names: list[str]) -> None:
    """Merge the measured table into each model's card, the file ``models list`` reads."""
    from ..registry import weights_path

    for name in names:
        path = weights_path(name).with_name(f"{name}.json")  # a model's own, also where it runs another's weights
        card = json.loads(path.read_text()) if path.exists() else {}
        card.setdefault("cbsd68_psnr", {}).update(
            {s: round(rows[name]["psnr"], 2) for s, rows in report["synthetic"].items()})
        card.setdefault("cbsd68_ssim", {}).update(
            {s: round(rows[name]["ssim"], 4) for s, rows in report["synthetic"].items()})
        if "pairs" in report:
            card[f"real_pairs_{report['pairs']['half']}_auto_psnr"] = round(
                report["pairs"][f"{name} (auto sigma: {method_for(name)})"]["psnr"], 2)
        path.write_text(json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    with torch.no_grad():  # not set_grad_enabled(False): an in-process caller keeps its gradients
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.record and args.noise_scale != 1.0:
        print("error: --record keeps the pairs' scores as measured (no --noise-scale)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        try:
            models = {n: stack.enter_context(open_engine(n, backend=args.backend, device=args.device))
                      for n in args.model.split(",")}
            sigmas = [float(s) for s in args.sigma.split(",") if s]
            if sigmas and not all(m.takes_float for m in models.values()):
                raise EngineError(f"the protocol's unclipped noisy images need float input, which "
                                  f"{args.backend} on {args.device} does not take; use --backend "
                                  "torch or onnxruntime on the CPU")
            # photos only for what runs on them: ``--pairs`` alone needs no CBSD68 on the machine
            needs_photos = bool(sigmas or args.estimator or args.camera_noise or not args.pairs)
            paths = (folder_paths(args.images) if args.images else split_paths(args.data, "cbsd68")) \
                if needs_photos else []
        except (EngineError, FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return _report(args, models, sigmas, paths)


def _report(args: argparse.Namespace, models: dict[str, Engine], sigmas: list[float], paths: list[Path]) -> int:
    paths = paths[: args.limit]
    baselines = set() if args.baselines == "none" else set(args.baselines.split(","))
    if "bm3d" in baselines:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            print("note: bm3d not installed (pip install bm3d); CBM3D column skipped", file=sys.stderr)
            baselines.discard("bm3d")
    t0 = time.perf_counter()
    report: dict[str, object] = {"images": str(args.images or "CBSD68"), "n_images": len(paths),
                                 "protocol": "AWGN added in float, unclipped; output rounded to 8 bits; PSNR on 8-bit RGB"}
    report["synthetic"] = eval_synthetic(models, paths, sigmas, baselines, args.bm3d_limit) if sigmas else {}
    for sigma, rows in report["synthetic"].items():
        print_table(f"sigma {sigma}  ({len(paths)} images, {report['images']})", rows)
    if args.estimator:
        methods = ["pca", "net"] if estimate_net.available() else ["pca"]
        report["estimator"] = {m: eval_estimator(paths, [0, 5, 10, 15, 25, 35, 50], m) for m in methods}
        for m, rows in report["estimator"].items():
            print(f"\nnoise estimator {m}: error (estimated - true, 0..255 units)")
            for s, r in rows.items():
                print(f"  sigma {s:>3}: bias {r['bias']:+.2f}  mean abs {r['mae']:.2f}")
    if args.camera_noise:
        lo, hi = args.camera_noise
        report["camera"] = eval_camera(models, paths, (lo, hi), H_GRID if "nlm" in baselines else ())
        levels = report["camera"]["levels"]
        print_table(f"camera noise, shot {lo:g}..{hi:g} ({len(paths)} images; mean std {levels['true']:.1f}, "
                    f"readings {', '.join(f'{k} {v:.1f}' for k, v in levels.items() if k != 'true')})",
                    {k: v for k, v in report["camera"].items() if k != "levels"})
    if args.pairs:
        report["pairs"] = eval_pairs(models, args.pairs, args.limit, args.half, frozenset(baselines),
                                     args.bm3d_limit, args.noise_scale)
        pairs = report["pairs"]
        print(f"\nreal pairs, per pair (PSNR dB): noisy, auto sigma of {', '.join(models)}")
        for r in pairs["per_pair"]:
            cells = "  ".join(f"{r[k][0]:6.2f}" for k in ["noisy", *(f"{n} auto" for n in models)])
            print(f"  {r['pair']:<48} sigma {r['estimated_sigma']:5.2f}  {cells}")
        scaled = f", noise x {args.noise_scale:g}" if args.noise_scale != 1.0 else ""
        print_table(f"real pairs {args.pairs}, half {pairs['half']} ({pairs['n']} pairs{scaled}), mean", pairs)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["engines"] = {n: m.name for n, m in models.items()}
    report["params"] = {n: sum(p.numel() for p in get_spec(n).build().parameters()) for n in models}
    report["tiers"] = {n: get_spec(n).tier for n in models}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.record:
        if args.images or args.limit:
            print("error: --record needs the full CBSD68 set (no --images/--limit)", file=sys.stderr)
            return 2
        record(report, list(models))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

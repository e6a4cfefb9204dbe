"""``python -m models eval-video --frames DIR|--suite --sigma 20 [--json F]``: video denoising, side by side.

For a clean sequence (a folder of frames in name order, or a video file decoded by OpenCV), or
for each clip of ``--suite`` (moving cameras: DAVIS bus 60-79, bikes 100-159; still cameras:
carphone 0-59 and ``still_clip``, walkers over a CBSD68 photo), it adds seeded white Gaussian noise of std ``--sigma`` to every frame, clipped and rounded to
8 bits as a saved noisy clip would be, and measures in one run:

- the per-frame model (``--model``, a comma list allowed);
- the same + the smoothing of ``--temporal auto|light|strong`` (``models.still_camera`` and
  ``models.temporal_filter``, the math the stream's smoothing stage runs; ``auto`` also reads
  the noisy inputs, and on a still camera averages them before the model, as the processor
  does live: ``run_auto``; and as a file job runs it, each input averaged with the frames
  ``--lookahead`` on each side: ``run_window``);
- the recurrent twin (``<model>-temporal``), fed its previous 8-bit output as in the product,
  alone and + each smoothing mode; the same net never given its previous output (what the
  recurrence itself adds); and with ``auto``: the twin fed its previous output only while the
  camera moves (``switch``, ``TWIN_VARIANTS``) or fed the smoothed output;
- OpenCV ``fastNlMeansDenoisingColoredMulti`` (5-frame window centred on the frame: it looks
  two frames ahead, which a live stream cannot) unless ``--no-nlm``.

Reported per method: mean PSNR and SSIM against the clean frames (8-bit RGB), and flicker: the
mean over frame pairs of mean |(out_t - out_t-1) - (clean_t - clean_t-1)| in 8-bit levels;
and milliseconds per frame (model + smoothing, on this machine).  With several clips a summary
gives each method's PSNR gain and flicker ratio against the first model per frame.

``--noise camera-light|camera-heavy`` instead puts each clip through one simulated camera
(``camera_clip``: real-camera-like noise, coarse and correlated across the channels, JPEG'd)
and runs only the ``--product`` rows, the level read by the product as a user's run reads it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data import DEFAULT_DATA
from ..metrics import psnr, ssim
from ..registry import UnknownModelError, create_model, get_spec, load_metadata, model_names
from ..temporal_filter import MODES
from ..window_average import RADIUS
from .video_clips import SUITE, load_frames, suite_frames
from .video_methods import nlm_multi, run_auto, run_model, run_twin_auto, run_window, smooth

SMOOTHING = ("auto", *MODES)  # auto: the still-camera aware filter (``--temporal auto``)

log = logging.getLogger("models.lab.eval_video")


def add_noise(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(f + rng.normal(0.0, sigma, f.shape)), 0, 255).astype(np.uint8)
            for f in frames]


# ``--noise camera-*``: the shot-noise gain (``models.noise``'s raw variance = shot x signal +
# read) of each camera set: a webcam in dim light, a phone at night
CAMERA_SHOT = {"light": (0.0004, 0.0012), "heavy": (0.004, 0.012)}


def camera_clip(clean: list[np.ndarray], seed: int,
                level: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(reference, noisy): every frame of ``clean`` through one camera (``models.noise``'s
    pipeline: raw shot and read noise, demosaicking, colour, tone, drawn once for the clip
    from ``seed``) with fresh noise, JPEG'd at quality 85 as a webcam's MJPEG; the reference
    is what that camera gives without noise (its demosaicking and JPEG errors are part of the
    picture every frame shows, as the mean of a still camera's shots holds them)."""
    import dataclasses

    from ..noise import camera_isp, sample_isp

    gen = torch.Generator().manual_seed(seed)
    cam = sample_isp(gen, shot=CAMERA_SHOT[level])
    quiet = dataclasses.replace(cam, shot=0.0, read=0.0)
    ref: list[np.ndarray] = []
    noisy: list[np.ndarray] = []
    for f in clean:
        x = torch.from_numpy(f).permute(2, 0, 1).float()[None] / 255
        for out, c, g in ((noisy, cam, gen), (ref, quiet, torch.Generator().manual_seed(0))):
            y, _ = camera_isp(x, g, cams=[c], jpeg_share=1.0, quality=85)
            out.append(np.ascontiguousarray(
                (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)))
    return ref, noisy


def flicker(out: list[np.ndarray], clean: list[np.ndarray]) -> float:
    if len(out) < 2:
        return 0.0
    diffs = [np.abs((o1.astype(np.float32) - o0) - (c1.astype(np.float32) - c0)).mean()
             for o0, o1, c0, c1 in zip(out, out[1:], clean, clean[1:])]
    return float(np.mean(diffs))


def score(name: str, out: list[np.ndarray], clean: list[np.ndarray], seconds: float,
          note: str = "", smoothing_seconds: float = 0.0) -> dict[str, object]:
    return {
        "method": name,
        "psnr": float(np.mean([psnr(o, c, 255.0) for o, c in zip(out, clean)])),
        "ssim": float(np.mean([ssim(o, c) for o, c in zip(out, clean)])),
        "flicker": flicker(out, clean),
        "seconds_per_frame": seconds / max(len(out), 1),
        "smoothing_seconds_per_frame": smoothing_seconds / max(len(out), 1),
        "note": note,
    }


def _timed(fn: Callable[[], list[np.ndarray]]) -> tuple[list[np.ndarray], float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# How a twin and the ``auto`` smoothing may be combined (besides the twin, then the smoothing):
# its recurrence only while the camera moves (what ``--temporal auto`` runs for a twin
# released with ``temporal_auto = switch``), and the smoothed frame fed back instead of its own.
TWIN_VARIANTS = (
    ("(recurrent while the camera moves)", {"switch": True}),
    ("(fed the smoothed output)", {"switch": False, "feed_smoothed": True}),
)


def evaluate(clean: list[np.ndarray], sigma: float, models: list[str], device: torch.device,
             smoothing: list[str], nlm: bool = True, seed: int = 0,
             twin_weights: Path | None = None,
             model_weights: Path | None = None, twin: bool = True,
             twin_name: str | None = None, lookahead: int = RADIUS,
             wiener: bool = True) -> list[dict[str, object]]:
    noisy = add_noise(clean, sigma, seed)
    rows = [score("noisy input", noisy, clean, 0.0)]
    for name in models:
        spec = get_spec(name)
        if spec.temporal:
            raise ValueError(f"--model expects per-frame models; {name} is recurrent")
        status = load_metadata(name).get("status", "trained")
        tag = "untrained placeholder" if status == "untrained placeholder" else ""
        own = model_weights if name == models[0] else None
        model = create_model(name, weights=own).to(device)
        if own is not None:
            tag = f"weights {own.name}"
        second = name if wiener else None  # the Wiener pass after it, as a file job has it
        out, sec = _timed(lambda: run_model(model, noisy, sigma, device, False, wiener=second))  # noqa: B023
        rows.append(score(f"{name} per frame", out, clean, sec, tag))
        for mode in smoothing:
            if mode == "auto":  # the inputs averaged on a still camera, then the smoothing
                sm, s2 = _timed(lambda: run_auto(model, noisy, sigma, device, second))  # noqa: B023
                rows.append(score(f"{name} + auto smoothing", sm, clean, s2, tag, max(s2 - sec, 0.0)))
                if lookahead:  # a file job's: the inputs averaged with the frames around them
                    sm, s2 = _timed(lambda: run_window(model, noisy, sigma, device, lookahead, second))  # noqa: B023
                    rows.append(score(f"{name} + auto, look-ahead {lookahead}", sm, clean, s2, tag,
                                      max(s2 - sec, 0.0)))
                continue
            sm, s2 = _timed(lambda: smooth(out, sigma, mode, device, noisy))  # noqa: B023
            rows.append(score(f"{name} + {mode} smoothing", sm, clean, sec + s2, tag, s2))
        tname = twin_name or f"{name}-temporal"
        if twin and tname in model_names(lab=True):
            aligned = get_spec(tname).aligned
            t_status = load_metadata(tname).get("status", "trained")
            t_tag = "untrained placeholder" if t_status == "untrained placeholder" else ""
            if twin_weights is not None:
                t_tag = f"weights {twin_weights.name}"
            tmodel = create_model(tname, weights=twin_weights).to(device)
            out_t, sec_t = _timed(lambda: run_model(tmodel, noisy, sigma, device, True, aligned))  # noqa: B023
            rows.append(score(f"{tname} (recurrent)", out_t, clean, sec_t, t_tag))
            # the same net never given its previous output: what the recurrence itself adds
            out_n, sec_n = _timed(lambda: run_model(tmodel, noisy, sigma, device, False))  # noqa: B023
            rows.append(score(f"{tname} without its previous output", out_n, clean, sec_n, t_tag))
            for mode in smoothing:
                sm, s2 = _timed(lambda: smooth(out_t, sigma, mode, device, noisy))  # noqa: B023
                rows.append(score(f"{tname} + {mode} smoothing", sm, clean, sec_t + s2, t_tag, s2))
            if "auto" in smoothing:
                for label, kw in TWIN_VARIANTS:
                    sm, s3 = _timed(lambda: run_twin_auto(
                        tmodel, noisy, sigma, device, **kw, aligned=aligned))  # noqa: B023
                    rows.append(score(f"{tname} {label} + auto smoothing", sm, clean, s3, t_tag))
        log.info("%s done", name)
    if nlm:
        out, sec = _timed(lambda: nlm_multi(noisy, sigma))
        rows.append(score("OpenCV NLM multi (5 frames, centred)", out, clean, sec,
                          f"h={max(3.0, 0.6 * sigma):g}, looks 2 frames ahead"))
    return rows


def through_product(clean: list[np.ndarray], sigma: float | None, model: str, modes: list[str],
                    seed: int = 0, wiener: bool = True,
                    noisy: list[np.ndarray] | None = None) -> list[dict[str, object]]:
    """The same noisy frames as PNG files through ``python -m stream noisy/ out/ --sigma S
    --model M --temporal MODE`` (a subprocess: ``models`` does not import ``stream``), one row
    per mode; the time is the whole command's, start-up included.  ``noisy``: those frames
    (else white noise of ``sigma`` is added); ``sigma`` None: the level is the product's own
    reading (``--sigma auto``)."""
    import subprocess
    import tempfile

    import cv2

    if noisy is None:
        assert sigma is not None
        noisy = add_noise(clean, sigma, seed)
    told = [] if sigma is None else ["--sigma", f"{sigma:g}"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "noisy"
        src.mkdir()
        for i, img in enumerate(noisy):
            cv2.imwrite(str(src / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for mode in modes:
            dst = Path(tmp) / f"out-{mode}"
            # ``causal``: ``auto`` without the look-ahead, as a live run has it
            flags = ["--temporal", "auto", "--lookahead", "0"] if mode == "causal" else ["--temporal", mode]
            cmd = [sys.executable, "-m", "stream", str(src), f"{dst}/", *told,
                   "--model", model, *flags, *([] if wiener else ["--wiener", "off"]), "-q", "-y"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[2])
            sec = time.perf_counter() - t0
            out = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(dst.iterdir())]
            if len(out) != len(clean):
                raise RuntimeError(f"python -m stream wrote {len(out)} frames of {len(clean)}")
            rows.append(score(f"python -m stream --model {model} {' '.join(flags)}", out, clean, sec))
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| method | PSNR (dB) | SSIM | flicker | ms/frame (of it smoothing) |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        note = f" ({r['note']})" if r["note"] else ""
        smooth_ms = 1000 * float(r.get("smoothing_seconds_per_frame", 0.0))
        lines.append(f"| {r['method']}{note} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r['flicker']:.2f} | {1000 * r['seconds_per_frame']:.1f}"
                     + (f" ({smooth_ms:.1f})" if smooth_ms else "") + " |")
    return "\n".join(lines)


def summary(results: dict[str, list[dict[str, object]]], baseline: str) -> str:
    """Each method against ``baseline`` on every clip: PSNR gain (dB) and flicker ratio."""
    lines = ["| method | " + " | ".join(results) + " |", "| --- |" + " --- |" * len(results)]
    methods = [r["method"] for r in next(iter(results.values()))]
    for m in methods:
        cells = []
        for rows in results.values():
            row = next((r for r in rows if r["method"] == m), None)
            base = next((r for r in rows if r["method"] == baseline), None)
            if row is None or base is None:
                cells.append("—")
                continue
            cells.append(f"{row['psnr'] - base['psnr']:+.2f} dB, x{row['flicker'] / base['flicker']:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models eval-video",
                                description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", type=Path,
                     help="clean frames: a folder of images (name order) or a video file")
    src.add_argument("--suite", nargs="?", const="all", metavar="CLIPS",
                     help="the standard clips from --data, moving and still cameras: all, or a "
                          f"comma list of {', '.join(c[0] for c in SUITE)}")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder for --suite")
    p.add_argument("--sigma", type=float, default=20.0, help="Gaussian noise std, 0..255")
    p.add_argument("--noise", choices=("white", *(f"camera-{k}" for k in CAMERA_SHOT)),
                   default="white",
                   help="white: Gaussian noise of --sigma, told the level; camera-light or "
                        "camera-heavy: one simulated camera per clip (a webcam in dim light, a "
                        "phone at night; JPEG q 85), scored against that camera's noise-free "
                        "frames, through the product only (--product, default off,auto,causal), "
                        "the level read by it")
    p.add_argument("--model", default="base", help="per-frame model(s), comma separated")
    p.add_argument("--smoothing", default="auto,light,strong",
                   help="smoothing modes to measure after the per-frame model (comma list, or "
                        "none); each also runs after the recurrent twin")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--limit", type=int, default=None, help="at most N frames (of each clip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-nlm", action="store_true", help="skip OpenCV NLM (slow: ~3 s a frame)")
    p.add_argument("--no-twin", action="store_true",
                   help="skip the recurrent twin's rows (the per-frame model and its smoothing only)")
    p.add_argument("--twin", help="the recurrent twin to measure (default: MODEL-temporal), "
                                  "e.g. a lab variant with --temporal-weights")
    p.add_argument("--temporal-weights", type=Path,
                   help="weights for the recurrent twin (a candidate, instead of the shipped ones)")
    p.add_argument("--model-weights", type=Path,
                   help="weights for the (first) per-frame model instead of the shipped ones; "
                        "the --product rows still run the shipped weights")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (0: torch's default); one measured 50x faster than "
                        "the default on the busy 2-core machine")
    p.add_argument("--product", metavar="MODES",
                   help="also run the noisy frames as PNGs through python -m stream with each "
                        "--temporal mode of this comma list (e.g. off,auto,causal; causal: auto "
                        "with --lookahead 0), first --model")
    p.add_argument("--lookahead", type=int, default=RADIUS, metavar="N",
                   help=f"also measure auto as a file job runs it, looking N frames ahead "
                        f"(default {RADIUS}; 0: not)")
    p.add_argument("--wiener", choices=("auto", "off"), default="auto",
                   help="the Wiener pass after a per-frame model (models.wiener), as a file job "
                        "runs it (auto, the default), or not (off), in-process and --product rows")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    smoothing = [] if args.smoothing in ("", "none") else args.smoothing.split(",")
    bad = [m for m in smoothing if m not in SMOOTHING]
    if bad:
        print(f"error: --smoothing: expected modes from {sorted(SMOOTHING)}, got {bad[0]!r}",
              file=sys.stderr)
        return 2
    if not 0 <= args.sigma <= 255:
        print(f"error: --sigma: expected 0..255, got {args.sigma:g}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    for flag, path in (("--temporal-weights", args.temporal_weights),
                       ("--model-weights", args.model_weights)):
        if path is not None and not path.is_file():
            print(f"error: {flag}: no such file {path}", file=sys.stderr)
            return 2
    names = [c[0] for c in SUITE] if args.suite == "all" else \
        [c.strip() for c in (args.suite or "").split(",") if c.strip()]
    clips: dict[str, list[np.ndarray]] = {}
    try:
        for m in models:
            get_spec(m)
        if args.frames is not None:
            clips[str(args.frames)] = load_frames(args.frames, args.limit, args.start)
        for name in names:
            clips[name] = suite_frames(args.data, name, args.limit)
    except (UnknownModelError, FileNotFoundError, ValueError, NotADirectoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results: dict[str, list[dict[str, object]]] = {}
    report = []
    for name, clean in clips.items():
        h, w = clean[0].shape[:2]
        log.info("%d frames %dx%d from %s, %s, device %s", len(clean), w, h, name,
                 f"sigma {args.sigma:g}" if args.noise == "white" else f"{args.noise} noise", dev)
        if args.noise != "white":  # through the product only, reading the level itself
            ref, noisy = camera_clip(clean, args.seed, args.noise.split("-")[1])
            std = float(np.mean([np.std(n.astype(np.float32) - r) for n, r in zip(noisy, ref)]))
            rows = [score("noisy input", noisy, ref, 0.0)]
            rows += through_product(ref, None, models[0], (args.product or "off,auto,causal").split(","),
                                    args.seed, args.wiener == "auto", noisy)
            results[name] = rows
            print(f"{name}: {len(clean)} frames {w}x{h}, {args.noise} noise (seed {args.seed}, "
                  f"std {std:.2f} against the camera's noise-free frames)")
            print(table(rows))
            print()
            report.append({"frames": name, "count": len(clean), "size": [w, h], "rows": rows})
            continue
        try:
            rows = evaluate(clean, args.sigma, models, torch.device(dev), smoothing,
                            nlm=not args.no_nlm, seed=args.seed, twin_weights=args.temporal_weights,
                            model_weights=args.model_weights, twin=not args.no_twin,
                            twin_name=args.twin, lookahead=args.lookahead,
                            wiener=args.wiener == "auto")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.product:
            rows += through_product(clean, args.sigma, models[0], args.product.split(","),
                                    args.seed, args.wiener == "auto")
        results[name] = rows
        what = next((f" ({c[1]}; {c[2]} from frame {c[3]})" for c in SUITE if c[0] == name), "")
        print(f"{name}{what}: {len(clean)} frames {w}x{h}, Gaussian sigma {args.sigma:g} "
              f"(seed {args.seed}, clipped and rounded to 8 bits)")
        print(table(rows))
        print()
        report.append({"frames": name, "count": len(clean), "size": [w, h], "rows": rows})
    if len(results) > 1:
        baseline = f"{models[0]} per frame" if args.noise == "white" else \
            f"python -m stream --model {models[0]} --temporal off"
        print(f"Against {baseline} (PSNR gain, flicker ratio):")
        print(summary(results, baseline))
    if args.json:
        one = report[0] if len(report) == 1 else {}
        args.json.write_text(json.dumps({
            **one, "noise": args.noise, "sigma": args.sigma, "seed": args.seed, "start": args.start, "device": dev,
            "clips": report,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m models eval-video --frames DIR|--suite --sigma 20 [--json F]``: video denoising, side by side.

For a clean sequence (a folder of frames in name order, or a video file decoded by OpenCV), or
for each clip of ``--suite`` (moving cameras: DAVIS bus 60-79, bikes 100-159; still cameras:
carphone 0-59 and ``still_clip``, walkers over a CBSD68 photo), it adds seeded white Gaussian noise of std ``--sigma`` to every frame, clipped and rounded to
8 bits as a saved noisy clip would be, and measures in one run:

- the per-frame model (``--model``, a comma list allowed);
- the same + the smoothing of ``--temporal auto|light|strong`` (``models.still_camera`` and
  ``models.temporal_filter``, the math the stream's smoothing stage runs; ``auto`` also reads
  the noisy inputs, and on a still camera averages them before the model, as the processor
  does: ``run_auto``);
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

from ..data import DEFAULT_DATA, folder_paths, read_rgb
from ..input_average import InputAverage
from ..metrics import psnr, ssim
from ..registry import UnknownModelError, create_model, get_spec, load_metadata, model_names
from ..still_camera import StillCameraFilter
from ..temporal_filter import MODES, RecursiveFilter

SMOOTHING = ("auto", *MODES)  # auto: the still-camera aware filter (``--temporal auto``)

log = logging.getLogger("models.lab.eval_video")


def load_frames(source: Path, limit: int | None = None, start: int = 0) -> list[np.ndarray]:
    """Clean RGB uint8 frames from a folder of images or a video file (OpenCV)."""
    if source.is_dir():
        paths = folder_paths(source)[start:]
        return [read_rgb(p) for p in paths[:limit]]
    from .temporal_data import read_video_cv2

    frames = read_video_cv2(source, None if limit is None else start + limit)[start:]
    if not frames:
        raise ValueError(f"no frames decoded from {source}")
    return frames


# The still-camera clip: a CBSD68 photo (never trained on) as the fixed scene, and three
# "walkers" (soft ellipses textured from other CBSD68 photos) crossing it at 0.8..3 px a frame
# with a little bobbing, as a surveillance camera or a webcam on a desk sees people.
STILL_BACKGROUND = "108005"
STILL_WALKERS = (  # texture photo, radii (x, y), start (x, y), velocity (x, y) px a frame
    ("119082", (16, 38), (40.0, 150.0), (2.1, 0.0)),
    ("130026", (22, 30), (420.0, 220.0), (-3.0, -0.3)),
    ("147091", (10, 14), (150.0, 70.0), (0.8, 0.25)),
)


def still_clip(data: Path, n: int = 40) -> list[np.ndarray]:
    """A still-camera clip made from photos: (320, 480, 3) uint8 frames, deterministic."""
    import cv2

    def photo(i: str) -> np.ndarray:
        hits = sorted((data / "bsds500").glob(f"*/{i}.jpg"))
        if not hits:
            raise FileNotFoundError(f"photo {i} not found under {data}/bsds500")
        img = read_rgb(hits[0])
        return img if img.shape[0] <= img.shape[1] else np.ascontiguousarray(img.transpose(1, 0, 2))

    bg = photo(STILL_BACKGROUND)[:320, :480].astype(np.float32)
    h, w = bg.shape[:2]
    textures = [photo(t)[:320, :480].astype(np.float32) for t, *_ in STILL_WALKERS]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    frames = []
    for t in range(n):
        img = bg.copy()
        for tex, (_, (rx, ry), (x0, y0), (vx, vy)) in zip(textures, STILL_WALKERS):
            cx, cy = x0 + vx * t, y0 + vy * t + 2.0 * np.sin(t * 0.7 + x0)
            # the texture moves with the walker (sub-pixel, bilinear)
            shift = np.float32([[1, 0, cx - w / 2], [0, 1, cy - h / 2]])
            layer = cv2.warpAffine(tex, shift, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
            mask = np.clip(4 * (1 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2), 0, 1)[..., None]
            img = img * (1 - mask) + layer * mask
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


def add_noise(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(f + rng.normal(0.0, sigma, f.shape)), 0, 255).astype(np.uint8)
            for f in frames]


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


def run_model(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float, device: torch.device,
              recurrent: bool) -> list[np.ndarray]:
    """Denoise a sequence; a recurrent model gets its previous 8-bit output as ``prev``."""
    outs: list[np.ndarray] = []
    prev: torch.Tensor | None = None
    with torch.inference_mode():
        for img in noisy:
            x = torch.from_numpy(img).to(device).permute(2, 0, 1)[None].float() / 255
            smap = torch.full_like(x[:, :1], sigma / 255)
            if prev is not None and prev.shape != x.shape:
                prev = None
            y = model(x, smap, prev) if recurrent else model(x, smap)
            y8 = (y.clamp(0, 1) * 255).round()
            if recurrent:
                prev = y8 / 255
            outs.append(y8[0].permute(1, 2, 0).byte().cpu().numpy())
    return outs


def run_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
             device: torch.device) -> list[np.ndarray]:
    """A per-frame model with ``--temporal auto`` as the product's processor runs it: on a
    still camera (as the smoothing read it at the frame before) the model gets the noisy
    inputs averaged over time with their per-pixel noise level (``InputAverage``), and the
    still-camera smoothing follows it."""
    filt, average = StillCameraFilter(), InputAverage()
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for img in noisy:
            x8, level = average(img, sigma, filt.scene_still)
            x = torch.from_numpy(np.ascontiguousarray(x8)).to(device).permute(2, 0, 1)[None].float() / 255
            smap = (torch.from_numpy(level)[None, None].to(device) / 255
                    if average.last_static > 0 else torch.full_like(x[:, :1], sigma / 255))
            y8 = (model(x, smap).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).byte().cpu().numpy()
            outs.append(filt(y8, sigma, img))
    return outs


def run_twin_auto(model: torch.nn.Module, noisy: list[np.ndarray], sigma: float,
                  device: torch.device, switch: bool = True,
                  feed_smoothed: bool = False) -> list[np.ndarray]:
    """A recurrent twin with the ``auto`` (still-camera) smoothing after it, run frame by frame
    as the product's processor runs them.  ``switch``: the twin gets its previous output only
    while the smoothing reads the camera as moving (``StillCameraFilter.camera_moving`` at
    the frame before), so on a still camera it denoises frame by frame and the smoothing does
    the long averaging.  ``feed_smoothed``: the previous output fed back is the smoothed one."""
    filt = StillCameraFilter()
    outs: list[np.ndarray] = []
    prev: torch.Tensor | None = None
    with torch.inference_mode():
        for img in noisy:
            x = torch.from_numpy(img).to(device).permute(2, 0, 1)[None].float() / 255
            smap = torch.full_like(x[:, :1], sigma / 255)
            use = prev if (prev is not None and prev.shape == x.shape
                           and (not switch or filt.camera_moving)) else None
            y8 = (model(x, smap, use).clamp(0, 1) * 255).round()
            den = y8[0].permute(1, 2, 0).byte().cpu().numpy()
            sm = filt(den, sigma, img)
            prev = (torch.from_numpy(sm).to(device).permute(2, 0, 1)[None].float()
                    if feed_smoothed else y8) / 255
            outs.append(sm)
    return outs


def smooth(frames: list[np.ndarray], sigma: float, mode: str, device: torch.device,
           noisy: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The stream's smoothing over denoised ``frames``; ``auto`` also reads the ``noisy``
    inputs they came from, as the stage reads ``Frame.original``."""
    if mode == "auto":
        filt_auto = StillCameraFilter()
        return [filt_auto(f, sigma, None if noisy is None else noisy[i])
                for i, f in enumerate(frames)]
    filt = RecursiveFilter(mode)
    out = []
    for f in frames:  # numpy on the CPU, as the stream's stage runs it; torch on a GPU
        out.append(filt(f, sigma) if device.type == "cpu"
                   else np.asarray(filt(torch.from_numpy(f).to(device), sigma).cpu()))
    return out


def nlm_multi(noisy: list[np.ndarray], sigma: float, window: int = 5) -> list[np.ndarray]:
    import cv2

    h = max(3.0, 0.6 * sigma)
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in noisy]
    n, half = len(noisy), window // 2
    out = []
    for i in range(n):
        # frames i-2..i+2, mirrored at the ends (OpenCV wants the whole window to exist)
        idx = [abs(j) if j < n else 2 * (n - 1) - j for j in range(i - half, i + half + 1)]
        srcs = [bgr[min(max(j, 0), n - 1)] for j in idx]
        den = cv2.fastNlMeansDenoisingColoredMulti(srcs, half, 2 * half + 1, None, h, h, 7, 21)
        out.append(np.ascontiguousarray(den[..., ::-1]))
    return out


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
             model_weights: Path | None = None, twin: bool = True) -> list[dict[str, object]]:
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
        out, sec = _timed(lambda: run_model(model, noisy, sigma, device, False))  # noqa: B023
        rows.append(score(f"{name} per frame", out, clean, sec, tag))
        for mode in smoothing:
            if mode == "auto":  # the inputs averaged on a still camera, then the smoothing
                sm, s2 = _timed(lambda: run_auto(model, noisy, sigma, device))  # noqa: B023
                rows.append(score(f"{name} + auto smoothing", sm, clean, s2, tag, max(s2 - sec, 0.0)))
                continue
            sm, s2 = _timed(lambda: smooth(out, sigma, mode, device, noisy))  # noqa: B023
            rows.append(score(f"{name} + {mode} smoothing", sm, clean, sec + s2, tag, s2))
        twin_name = f"{name}-temporal"
        if twin and twin_name in model_names():
            t_status = load_metadata(twin_name).get("status", "trained")
            t_tag = "untrained placeholder" if t_status == "untrained placeholder" else ""
            if twin_weights is not None:
                t_tag = f"weights {twin_weights.name}"
            tmodel = create_model(twin_name, weights=twin_weights).to(device)
            out_t, sec_t = _timed(lambda: run_model(tmodel, noisy, sigma, device, True))  # noqa: B023
            rows.append(score(f"{twin_name} (recurrent)", out_t, clean, sec_t, t_tag))
            # the same net never given its previous output: what the recurrence itself adds
            out_n, sec_n = _timed(lambda: run_model(tmodel, noisy, sigma, device, False))  # noqa: B023
            rows.append(score(f"{twin_name} without its previous output", out_n, clean, sec_n, t_tag))
            for mode in smoothing:
                sm, s2 = _timed(lambda: smooth(out_t, sigma, mode, device, noisy))  # noqa: B023
                rows.append(score(f"{twin_name} + {mode} smoothing", sm, clean, sec_t + s2, t_tag, s2))
            if "auto" in smoothing:
                for label, kw in TWIN_VARIANTS:
                    sm, s3 = _timed(lambda: run_twin_auto(tmodel, noisy, sigma, device, **kw))  # noqa: B023
                    rows.append(score(f"{twin_name} {label} + auto smoothing", sm, clean, s3, t_tag))
        log.info("%s done", name)
    if nlm:
        out, sec = _timed(lambda: nlm_multi(noisy, sigma))
        rows.append(score("OpenCV NLM multi (5 frames, centred)", out, clean, sec,
                          f"h={max(3.0, 0.6 * sigma):g}, looks 2 frames ahead"))
    return rows


def through_product(clean: list[np.ndarray], sigma: float, model: str, modes: list[str],
                    seed: int = 0) -> list[dict[str, object]]:
    """The same noisy frames as PNG files through ``python -m stream noisy/ out/ --sigma S
    --model M --temporal MODE`` (a subprocess: ``models`` does not import ``stream``), one row
    per mode; the time is the whole command's, start-up included."""
    import subprocess
    import tempfile

    import cv2

    noisy = add_noise(clean, sigma, seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "noisy"
        src.mkdir()
        for i, img in enumerate(noisy):
            cv2.imwrite(str(src / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for mode in modes:
            dst = Path(tmp) / f"out-{mode}"
            cmd = [sys.executable, "-m", "stream", str(src), f"{dst}/", "--sigma", f"{sigma:g}",
                   "--model", model, "--temporal", mode, "-q", "-y"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[2])
            sec = time.perf_counter() - t0
            out = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(dst.iterdir())]
            if len(out) != len(clean):
                raise RuntimeError(f"python -m stream wrote {len(out)} frames of {len(clean)}")
            rows.append(score(f"python -m stream --model {model} --temporal {mode}", out, clean, sec))
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


# The standard clips (``--suite``), both kinds of camera, none of them trained on:
# (name, what the camera does, frames source under --data or "still", start, count)
SUITE = (
    ("bus", "moving: pans with a bus", "video/davis-bus", 60, 20),
    ("bikes", "moving: slow and fast pans, a cut", "video/bikes.mp4", 100, 60),
    ("carphone", "still, a talking head and a window", "video/carphone_pristine.mp4", 0, 60),
    ("still", "still, walkers over a photo (made here)", "still", 0, 40),
)


def suite_frames(data: Path, name: str, limit: int | None = None) -> list[np.ndarray]:
    for clip, _, source, start, count in SUITE:
        if clip == name:
            count = count if limit is None else min(count, limit)
            return still_clip(data, count) if source == "still" else \
                load_frames(data / source, count, start)
    raise ValueError(f"unknown suite clip {name!r}; expected one of {[c[0] for c in SUITE]}")


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
                        "--temporal mode of this comma list (e.g. off,auto), first --model")
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
        log.info("%d frames %dx%d from %s, sigma %g, device %s", len(clean), w, h, name,
                 args.sigma, dev)
        try:
            rows = evaluate(clean, args.sigma, models, torch.device(dev), smoothing,
                            nlm=not args.no_nlm, seed=args.seed, twin_weights=args.temporal_weights,
                            model_weights=args.model_weights, twin=not args.no_twin)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.product:
            rows += through_product(clean, args.sigma, models[0], args.product.split(","),
                                    args.seed)
        results[name] = rows
        what = next((f" ({c[1]}; {c[2]} from frame {c[3]})" for c in SUITE if c[0] == name), "")
        print(f"{name}{what}: {len(clean)} frames {w}x{h}, Gaussian sigma {args.sigma:g} "
              f"(seed {args.seed}, clipped and rounded to 8 bits)")
        print(table(rows))
        print()
        report.append({"frames": name, "count": len(clean), "size": [w, h], "rows": rows})
    if len(results) > 1:
        print(f"Against {models[0]} per frame (PSNR gain, flicker ratio):")
        print(summary(results, f"{models[0]} per frame"))
    if args.json:
        one = report[0] if len(report) == 1 else {}
        args.json.write_text(json.dumps({
            **one, "sigma": args.sigma, "seed": args.seed, "start": args.start, "device": dev,
            "clips": report,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m stream.bench --compare``: this project's tiers beside FFmpeg's denoising filters.

The clip (default: the bundled sample, first ``--frames`` frames) gets seeded white Gaussian
noise of std sigma per ``--sigma`` (rounded and clipped to 8 bits; ``models.lab.eval_video``'s
``add_noise``), and the same noisy frames go to every method:

- each tier (``--models``, default ``pico,nano,tiny,fast,base``) through the product's engine
  (``stream.session.open_engine``), one frame at a time, told the true sigma, ``--temporal off``;
- each FFmpeg filter the local ``ffmpeg`` has (``FILTERS``), raw RGB in and out through a
  subprocess, at a small grid of its main strength setting; the best PSNR per sigma is kept and
  its setting named.  FFmpeg converts to a pixel format the filter takes (planar RGB where it
  can, else YUV) and back; no ``ffmpeg``: the filters are skipped with a note.

Scores (``models.lab.eval_video.score``): mean PSNR and SSIM against the clean frames, and flicker
(mean |(out_t - out_t-1) - (clean_t - clean_t-1)| in 8-bit levels).  fps is the denoising alone:
for a tier the engine loop (after a warm-up frame); for a filter, the wall time of a null-output
run of the noisy frames looped to at least ``MIN_TIMED_S`` seconds, minus the same run without
the filter (decode of raw frames, conversion, start-up).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EXIT_USAGE, UserError, configure_logging

SAMPLE = Path(__file__).with_name("samples") / "sample.mp4"
MIN_TIMED_S = 1.5  # filters are timed over loops of the clip lasting about this long

# Each filter's grid over its main strength, as a function of the noise sigma (8-bit levels).
FILTERS: dict[str, Callable[[float], list[str]]] = {
    "hqdn3d": lambda s: [f"hqdn3d={v:g}" for v in (s * 2 / 3, s, s * 3 / 2, s * 2)],
    "atadenoise": lambda s: [
        "atadenoise=" + ":".join(f"{p}a={a:g}:{p}b={4 * a:g}" for p in range(3))
        for a in (min(0.3, s / 300), min(0.3, s / 150), min(0.3, s / 75))],
    "nlmeans": lambda s: [f"nlmeans=s={min(30.0, v):g}" for v in (s / 3, s / 2, s * 2 / 3)],
    # bm3d's sigma is not in 8-bit levels here: its best is near 4x the noise std
    "bm3d": lambda s: [f"bm3d=sigma={v:g}" for v in (s * 3, s * 4, s * 5)],
    "fftdnoiz": lambda s: [f"fftdnoiz=sigma={v:g}" for v in sorted({min(30.0, s * k) for k in (0.5, 1, 1.5, 2)})],
    "vaguedenoiser": lambda s: [f"vaguedenoiser=threshold={v:g}" for v in (s, s * 2, s * 3, s * 4)],
}


def load_clip(path: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames as (H, W, 3) uint8 RGB (PyAV, as the product decodes)."""
    import av

    out: list[np.ndarray] = []
    try:
        with av.open(str(path)) as src:
            for f in src.decode(video=0):
                out.append(f.to_ndarray(format="rgb24"))
                if len(out) >= frames:
                    break
    except (av.FFmpegError, OSError) as exc:
        raise UserError(f"--clip: cannot decode {path}: {exc}") from None
    if len(out) < 2:
        raise UserError(f"--clip: expected a video of 2 frames or more, got {len(out)} from {path}")
    return out


def available_filters(ffmpeg: str | None, wanted: list[str]) -> tuple[list[str], list[str]]:
    """(filters the binary has, notes on the ones skipped)."""
    if ffmpeg is None:
        return [], ["no ffmpeg on PATH: FFmpeg filters skipped"] if wanted else []
    listing = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True,
                             text=True, check=False).stdout
    have = {line.split()[1] for line in listing.splitlines() if len(line.split()) > 2}
    found = [f for f in wanted if f in have]
    return found, [f"ffmpeg {ffmpeg} has no {f}: skipped" for f in wanted if f not in have]


def _ffmpeg_in(ffmpeg: str, w: int, h: int, src: str, loops: int = 0) -> list[str]:
    loop = ["-stream_loop", str(loops)] if loops else []
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *loop, "-f", "rawvideo",
            "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25", "-i", src]


def run_filter(ffmpeg: str, vf: str, noisy: list[np.ndarray], raw: Path) -> list[np.ndarray]:
    """The noisy frames (already written to ``raw``) through ``-vf vf``, back as RGB frames."""
    h, w = noisy[0].shape[:2]
    cmd = [*_ffmpeg_in(ffmpeg, w, h, str(raw)), "-vf", vf, "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.decode(errors='replace').strip()}")
    data = np.frombuffer(done.stdout, np.uint8)
    if data.size != len(noisy) * h * w * 3:  # temporal filters must give one frame per frame
        raise RuntimeError(f"ffmpeg -vf {vf} gave {data.size // (h * w * 3)} frames of {len(noisy)}")
    return list(data.reshape(len(noisy), h, w, 3))


def filter_fps(ffmpeg: str, vf: str, raw: Path, w: int, h: int, n: int, once_s: float) -> float:
    """Frames per second of the filter alone: looped null-output runs, with minus without it."""
    loops = max(0, min(20, math.ceil(MIN_TIMED_S / max(once_s, 1e-3)) - 1))

    def wall(extra: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run([*_ffmpeg_in(ffmpeg, w, h, str(raw), loops), *extra, "-f", "null", "-"],
                       check=True, capture_output=True)
        return time.perf_counter() - t0

    base = wall([])
    with_filter = wall(["-vf", vf])
    frames = n * (loops + 1)
    return frames / max(with_filter - base, 1e-6)


def run_tier(model: str, noisy: list[np.ndarray], sigma: float, backend: str, device: str,
             engine_cache: dict[str, Any]) -> tuple[list[np.ndarray], float, str]:
    """(outputs, engine-loop fps, backend name) for one tier, per frame, temporal off."""
    from .options import DenoiseOptions
    from .session import open_engine, plan

    engine = engine_cache.get(model)
    if engine is None:
        denoise = plan(DenoiseOptions(model=model, sigma=sigma, backend=backend, device=device,
                                      temporal="off"))
        engine = engine_cache[model] = open_engine(denoise)
    s = np.array([sigma], np.float32)
    engine.infer(noisy[0][None], s)  # warm-up: one-off set-up is not the tier's speed
    out = []
    t0 = time.perf_counter()
    for frame in noisy:
        out.append(engine.infer(frame[None], s)[0])
    fps = len(noisy) / max(time.perf_counter() - t0, 1e-9)
    return out, fps, engine.name


def with_wiener(model: str, noisy: list[np.ndarray], outs: list[np.ndarray], sigma: float,
                engine_fps: float) -> tuple[list[np.ndarray], float] | None:
    """A tier's outputs after the Wiener pass a file job runs on white noise (``models.wiener``)
    and the fps of both together; None where the model takes no share at this level."""
    from models.wiener import second_pass, share_for

    if share_for(model, sigma) <= 0:
        return None
    t0 = time.perf_counter()
    refined = [second_pass(model, n, o, sigma) for n, o in zip(noisy, outs)]
    seconds = len(noisy) / engine_fps + time.perf_counter() - t0
    return refined, len(noisy) / max(seconds, 1e-9)


def compare(clean: list[np.ndarray], sigmas: list[float], models: list[str],
            filters: list[str], ffmpeg: str | None, backend: str = "auto",
            device: str = "auto", seed: int = 0,
            progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """One row per (sigma, method): method, kind, setting, psnr, ssim, flicker, fps."""
    from models.lab.eval_video import add_noise, score

    h, w = clean[0].shape[:2]
    rows: list[dict[str, Any]] = []
    engines: dict[str, Any] = {}

    def row(sigma: float, method: str, kind: str, setting: str, out: list[np.ndarray],
            fps: float | None) -> dict[str, Any]:
        r = score(method, out, clean, 0.0)
        return {"sigma": sigma, "method": method, "kind": kind, "setting": setting,
                "psnr": r["psnr"], "ssim": r["ssim"], "flicker": r["flicker"], "fps": fps}

    try:
        with tempfile.TemporaryDirectory(prefix="stream-compare-") as tmp:
            for sigma in sigmas:
                noisy = add_noise(clean, sigma, seed)
                rows.append(row(sigma, "noisy input", "input", "", noisy, None))
                for model in models:
                    progress(f"sigma {sigma:g}: {model}")
                    out, fps, name = run_tier(model, noisy, sigma, backend, device, engines)
                    rows.append(row(sigma, model, "tier", f"{name}, sigma {sigma:g}, temporal off",
                                    out, fps))
                    second = with_wiener(model, noisy, out, sigma, fps)
                    if second is not None:  # what a file job writes (``--wiener auto``)
                        rows.append(row(sigma, f"{model} + Wiener", "tier",
                                        f"{name}, sigma {sigma:g}, temporal off, Wiener pass", *second))
                raw = Path(tmp) / f"noisy-{sigma:g}.rgb"
                raw.write_bytes(b"".join(np.ascontiguousarray(f).tobytes() for f in noisy))
                for name in filters:
                    best: dict[str, Any] | None = None
                    grid = FILTERS[name](sigma)
                    for vf in grid:
                        progress(f"sigma {sigma:g}: ffmpeg -vf {vf}")
                        t0 = time.perf_counter()
                        out = run_filter(ffmpeg, vf, noisy, raw)  # type: ignore[arg-type]
                        once = time.perf_counter() - t0
                        r = row(sigma, name, "ffmpeg", vf, out, None)
                        if best is None or r["psnr"] > best["psnr"]:
                            best, best_once = r, once
                    assert best is not None
                    best["grid_edge"] = len(grid) > 1 and best["setting"] in (grid[0], grid[-1])
                    best["fps"] = filter_fps(ffmpeg, best["setting"], raw, w, h,  # type: ignore[arg-type]
                                             len(noisy), best_once)
                    rows.append(best)
    finally:
        for engine in engines.values():
            engine.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: one line per method, PSNR/SSIM/flicker per sigma side by side, fps."""
    sigmas = sorted({r["sigma"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["method"], r["sigma"]): r for r in rows}
    head = ["method"] + [f"{m} s{s:g}" for s in sigmas for m in ("PSNR", "SSIM", "flicker")]
    head += ["fps (mean over sigmas)", "best setting per sigma"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for method in methods:
        cells = [method if by.get((method, sigmas[0]), {}).get("kind") != "ffmpeg"
                 else f"ffmpeg {method}"]
        fps, settings = [], []
        for s in sigmas:
            r = by.get((method, s))
            if r is None:
                cells += ["—"] * 3
                continue
            cells += [f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['flicker']:.2f}"]
            if r["fps"] is not None:
                fps.append(r["fps"])
            if r["kind"] == "ffmpeg":
                short = r["setting"].partition("=")[2]  # atadenoise: one plane's a and b
                short = ":".join(short.split(":")[:2]) if len(short) > 24 else short
                settings.append(short + (" (edge)" if r.get("grid_edge") else ""))
        cells.append(f"{np.mean(fps):.1f}" if fps else "—")
        cells.append(" / ".join(settings))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Quality (PSNR) against speed (fps, log scale), one panel per sigma; drawn with OpenCV
    (matplotlib is not a dependency)."""
    import cv2

    sigmas = sorted({r["sigma"] for r in rows})
    pts = [r for r in rows if r["fps"]]
    if not pts:
        raise UserError("--plot: no timed method to plot (no tier and no filter ran)")
    W, H, L, R, T, B = 640, 440, 70, 20, 50, 60
    # one fps axis for every panel, whole decades
    fmin = 10 ** math.floor(math.log10(min(r["fps"] for r in pts)))
    fmax = 10 ** math.ceil(math.log10(max(r["fps"] for r in pts)))
    panels = []
    for sigma in sigmas:
        img = np.full((H, W, 3), 255, np.uint8)
        mine = [r for r in pts if r["sigma"] == sigma]
        noisy = next((r["psnr"] for r in rows if r["sigma"] == sigma and r["kind"] == "input"),
                     None)
        ps = [r["psnr"] for r in mine] + ([noisy] if noisy else [])
        lo, hi = math.floor(min(ps)) - 1, math.ceil(max(ps)) + 1

        def xy(fps: float, p: float, lo: int = lo, hi: int = hi) -> tuple[int, int]:
            x = L + (math.log10(fps) - math.log10(fmin)) / math.log10(fmax / fmin) * (W - L - R)
            return int(x), int(H - B - (p - lo) / (hi - lo) * (H - T - B))

        grey, font = (200, 200, 200), cv2.FONT_HERSHEY_SIMPLEX
        decade = fmin
        while decade <= fmax * 1.001:
            x, _ = xy(decade, lo)
            cv2.line(img, (x, T), (x, H - B), grey, 1)
            cv2.putText(img, f"{decade:g}", (x - 10, H - B + 18), font, 0.45, (0, 0, 0), 1)
            decade *= 10
        step = 1 if hi - lo <= 10 else 2
        for p in range(lo, hi + 1, step):
            _, y = xy(fmin, p)
            cv2.line(img, (L, y), (W - R, y), grey, 1)
            cv2.putText(img, str(p), (L - 30, y + 5), font, 0.45, (0, 0, 0), 1)
        if noisy:
            _, y = xy(fmin, noisy)
            cv2.line(img, (L, y), (W - R, y), (0, 0, 255), 1)
            cv2.putText(img, "noisy input", (W - R - 95, y - 5), font, 0.45, (0, 0, 255), 1)
        cv2.rectangle(img, (L, T), (W - R, H - B), (0, 0, 0), 1)
        placed: list[tuple[int, int, int]] = []  # labels drawn: (left, right, baseline)
        for r in sorted(mine, key=lambda r: -r["psnr"]):
            colour = (200, 80, 0) if r["kind"] == "tier" else (0, 120, 0)
            x, y = xy(r["fps"], r["psnr"])
            cv2.circle(img, (x, y), 6 if r["kind"] == "tier" else 4, colour, -1, cv2.LINE_AA)
            width = cv2.getTextSize(r["method"], font, 0.5, 1)[0][0]
            left = x + 8 if x + 8 + width < W - R else x - 8 - width  # keep it inside
            base = y - 6
            while any(a < left + width and left < b and abs(base - c) < 14 for a, b, c in placed):
                base += 14  # below a label it would overlap
            placed.append((left, left + width, base))
            cv2.putText(img, r["method"], (left, base), font, 0.5, colour, 1, cv2.LINE_AA)
        cv2.putText(img, f"sigma {sigma:g}: PSNR (dB) vs fps (denoising alone, log)", (L, T - 15),
                    font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "blue: this project (tiers)   green: FFmpeg filters (best setting)",
                    (L, H - 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(img)
    canvas = np.hstack(panels)
    banner = np.full((30, canvas.shape[1], 3), 255, np.uint8)
    cv2.putText(banner, title[: canvas.shape[1] // 7], (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.vstack([banner, canvas])):
        raise UserError(f"--plot: cannot write {path}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stream.bench --compare",
                                description=__doc__.split("\n")[0])
    p.add_argument("--clip", type=Path, default=SAMPLE, help="clean clip (default: bundled sample)")
    p.add_argument("--sigma", default="15,30", help="comma-separated noise stds (default 15,30)")
    p.add_argument("--frames", type=int, default=30, help="first N frames (default 30)")
    p.add_argument("--models", default="pico,nano,tiny,fast,base", help="tiers (default pico,nano,tiny,fast,base)")
    p.add_argument("--filters", default=",".join(FILTERS),
                   help=f"FFmpeg filters, those the binary has (default {','.join(FILTERS)}; "
                        "'none' for none)")
    p.add_argument("--ffmpeg", default=None, help="the ffmpeg binary (default: ffmpeg on PATH)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=None, help="write the quality-vs-speed PNG here")
    p.add_argument("--json", nargs="?", const="-", default=None,
                   help="write the rows as JSON to this file (bare --json: to stdout, no table)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log messages")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        try:
            sigmas = [float(s) for s in args.sigma.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--sigma: expected numbers like 15,30, got {args.sigma!r}") from None
        if not sigmas or any(not 0 < s <= 100 for s in sigmas):
            raise UserError(f"--sigma: expected values in (0, 100], got {args.sigma!r}")
        if args.frames < 2:
            raise UserError(f"--frames: expected 2 or more, got {args.frames}")
        if not args.clip.is_file():
            raise UserError(f"--clip: expected a video file, got {str(args.clip)!r}")
        wanted = [] if args.filters == "none" else [f.strip() for f in args.filters.split(",")]
        unknown = [f for f in wanted if f not in FILTERS]
        if unknown:
            raise UserError(f"--filters: expected names from {', '.join(FILTERS)}, got "
                            f"{', '.join(unknown)}")
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        from models import get_spec

        for name in models:  # a misspelt model: one line, before any note or work
            get_spec(name)
        ffmpeg = args.ffmpeg or shutil.which("ffmpeg")
        if args.ffmpeg and shutil.which(args.ffmpeg) is None:
            raise UserError(f"--ffmpeg: expected an executable, got {args.ffmpeg!r}")
        filters, notes = available_filters(ffmpeg, wanted)
        clean = load_clip(args.clip, args.frames)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        to_stdout = args.json == "-"
        rows = compare(clean, sigmas, models, filters, ffmpeg, args.backend, args.device,
                       args.seed, progress=lambda m: print(m, file=sys.stderr, flush=True)
                       if args.verbose else None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    h, w = clean[0].shape[:2]
    header = (f"{args.clip.name}, {len(clean)} frames {w}x{h}, white noise seed {args.seed}; "
              f"{os.cpu_count()} CPU cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}")
    result = {"header": header, "clip": str(args.clip), "frames": len(clean), "size": [w, h],
              "sigmas": sigmas, "notes": notes, "rows": rows}
    if args.plot:
        try:
            plot(rows, args.plot, header)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if to_stdout:
        print(json.dumps(result, indent=2))
        return 0
    print(header)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0

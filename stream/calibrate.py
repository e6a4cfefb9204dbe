"""``python -m stream calibrate SOURCE --name NAME`` and ``python -m stream profiles``.

Calibrate: measure a camera's noise (from a still-scene clip or camera, or from ``--pairs
DIR`` of noisy/clean pairs), fine-tune the model on it without forgetting general noise
(``models.calibrate_tune``), and save a profile under ``~/.cache/denoise-stream/profiles``
(``$XDG_CACHE_HOME`` honoured) that ``python -m stream ... --profile NAME`` uses.  Exit 2
with one line for bad input (no still part, too short, no such camera, a temporal model);
nothing is written unless the whole profile is.  From a camera (or ``--realtime``) the
preview window shows the calibration running (``stream.calibview``; ``--preview`` asks for it
elsewhere, ``--no-preview`` leaves it out).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import calibcheck
from .errors import EXIT_USAGE, UserError, configure_logging

log = logging.getLogger("stream.calibrate")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit 2 (as stream.cli's parser; not imported
    from there: stream.cli dispatches here)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def number_arg(lo: float, hi: float, *, low_open: bool = False, integer: bool = False):
    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = float("nan")
        if not (value > lo if low_open else value >= lo) or not value <= hi:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(
                f"expected {kind} {'above' if low_open else 'from'} {lo:g} up to {hi:g}, got {text!r}")
        return value

    return parse


def _size_arg(text: str) -> tuple[int, int]:
    from engines.base import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m stream calibrate",
                       description="Learn a profile of one camera's noise (see README, "
                                   "'Calibrate to your camera').")
    p.add_argument("source", nargs="?", default=None,
                   help="a clip of a still scene, or a camera (webcam, /dev/video0)")
    p.add_argument("--name", required=True, help="the profile's name")
    p.add_argument("--pairs", type=Path, default=None, metavar="DIR",
                   help="noisy/clean pairs instead (*_real.* / *_mean.*, clean = mean of many shots)")
    p.add_argument("--camera", default=None,
                   help="with --pairs: the camera (file name prefix before the first _)")
    p.add_argument("--half", default="all", choices=("all", "tune", "test"),
                   help="with --pairs: calibrate on this half of the scenes (models.data.pair_paths)")
    p.add_argument("--seconds", type=number_arg(0, 600, low_open=True), default=20.0,
                   help="how much of the clip or camera to read (default 20)")
    p.add_argument("--model", default="fast", help="the model to tune (default fast)")
    p.add_argument("--steps", type=number_arg(0, 1_000_000, integer=True), default=1500,
                   help="fine-tune steps (default 1500)")
    p.add_argument("--threads", type=number_arg(1, 256, integer=True), default=1)
    p.add_argument("--size", type=_size_arg, default=None, metavar="WxH",
                   help="camera picture size to ask for (a profile holds for one frame size)")
    p.add_argument("--realtime", action="store_true",
                   help="read a clip at its own pace, as a live source (as a camera is read)")
    p.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None,
                   help="show the calibration running in the preview window (default: on for "
                        "a camera or --realtime where a display is)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace a profile of that name")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def read_clip(source: str, seconds: float, size: tuple[int, int] | None = None,
              realtime: bool = False,
              on_frame: Callable[[np.ndarray, int, int], None] | None = None
              ) -> tuple[np.ndarray, float]:
    """Up to ``seconds`` of frames (T, H, W, 3) uint8 from a file or camera, and its rate
    (``size``: what to ask a camera for; ``realtime``: a file at its own pace; ``on_frame``:
    told each frame, how many were read and how many are wanted)."""
    from .live import RealtimeSource
    from .openers import open_source
    from .options import CameraOptions, RunOptions

    src = open_source(source, RunOptions(input=source, camera=CameraOptions(size=size)), None)
    if realtime and not src.live:
        src = RealtimeSource(src)
    try:
        rate = float(src.info.rate) if getattr(src.info, "rate", None) else 25.0
        limit = max(1, round(seconds * rate))
        expected = min(limit, src.info.frames or limit)  # what on_frame is told is wanted
        frames = []
        for frame in src.frames():
            if frames and frame.image.shape != frames[0].shape:
                raise UserError(f"{source}: the frame size changed at frame {len(frames)}; "
                                "calibrate on one size")
            frames.append(frame.image)
            if on_frame is not None:
                on_frame(frame.image, len(frames), max(expected, len(frames)))
            if len(frames) >= limit:
                break
    finally:
        src.close()
    if not frames:
        raise UserError(f"{source}: no frames could be read")
    return np.stack(frames), rate


def measure(args: argparse.Namespace, preview: Any = None):  # -> models.calibrate.Measurement
    from models.calibrate import camera_of, measure_clip, measure_pairs
    from models.data import pair_paths

    if args.pairs is not None:
        if args.source is not None:
            raise UserError("give either SOURCE or --pairs DIR, not both")
        try:
            pairs = pair_paths(args.pairs, args.half)
        except (FileNotFoundError, NotADirectoryError):
            raise UserError(f"--pairs: no *_real/*_mean image pairs in {args.pairs}") from None
        cameras = sorted({camera_of(n) for n, _ in pairs})
        if args.camera is None and len(cameras) > 1:
            raise UserError(f"--pairs {args.pairs} holds {len(cameras)} cameras "
                            f"({', '.join(cameras)}); choose one with --camera")
        camera = args.camera or cameras[0]
        mine = [(n, c) for n, c in pairs if camera_of(n) == camera]
        if not mine:
            raise UserError(f"--camera {camera}: no pairs of it in {args.pairs} (half {args.half}; "
                            f"cameras: {', '.join(cameras)})")
        if preview is not None:
            preview.update(force=True, phase="measuring")
        return measure_pairs(mine, f"{args.pairs} camera {camera} half {args.half}")
    if args.source is None:
        raise UserError("no SOURCE; give a clip or camera of a still scene, or --pairs DIR")
    on_frame = None
    if preview is not None:
        def on_frame(image: np.ndarray, done: int, total: int) -> None:
            preview.update(image, force=done == total, phase="reading", done=done, total=total,
                           detail="keep the camera and the scene still")
    frames, rate = read_clip(args.source, args.seconds, args.size, args.realtime, on_frame)
    if preview is not None:
        preview.update(frames[-1], force=True, phase="measuring", detail="")
    return measure_clip(frames, args.source, min_len=max(8, int(rate * 0.5)))


def print_measurement(m, out=None) -> None:
    out = out if out is not None else sys.stdout  # the stream of now, not of the import's time
    nlf = m.nlf
    print(f"noise of {m.source} ({m.kind}, {m.used} used; {'; '.join(m.notes) or 'all pixels'}):",
          file=out)
    print("  brightness " + " ".join(f"{c:5.0f}" for c in nlf.centres), file=out)
    for c, name in enumerate("RGB"):
        print(f"  std {name}      " + " ".join("    -" if s is None else f"{s:5.2f}"
                                             for s in nlf.std[c]), file=out)
    corr = m.correlation
    print("  correlation: " + ", ".join(f"{k} {v:.2f}" for k, v in corr.items())
          + f"; level {nlf.level():.2f}", file=out)


def open_preview(args: argparse.Namespace) -> Any:
    """The calibration's preview window, or None: asked for with --preview, else shown for a
    live source (a camera, --realtime) where a display is."""
    from .openers import is_camera_input

    if args.preview is False:
        return None
    live = args.pairs is None and args.source is not None and (
        args.realtime or is_camera_input(args.source))
    if args.preview is None and not live:
        return None
    from .calibview import CalibrationPreview
    from .preview import display_missing

    why = display_missing()
    try:
        if why:
            raise UserError(why.split(";")[0])
        return CalibrationPreview(args.name)
    except UserError as exc:
        if args.preview:
            raise UserError(f"--preview: {exc}") from None
        log.warning("%s; calibrating without the preview window", exc)
        return None


def calibrate(args: argparse.Namespace, argv: list[str]) -> int:
    from models import get_spec
    from models.calibrate_profile import cache_root, check_name

    check_name(args.name)  # a CalibrationError: a UserError
    try:
        spec = get_spec(args.model)
    except ValueError as exc:  # models.UnknownModelError
        raise UserError(str(exc)) from None
    if spec.temporal:
        raise UserError(f"--model {args.model} is recurrent; calibrate its per-frame model")
    if (cache_root() / args.name).exists() and not args.overwrite:
        raise UserError(f"profile {args.name!r} exists in {cache_root()}; -y replaces it")
    preview = open_preview(args)
    if preview is None:
        return tune_and_save(args, argv, None)
    try:
        from . import preview as window

        if window.GUI_ON_MAIN_THREAD:
            from .calibview import run_beside_gui

            return run_beside_gui(lambda: tune_and_save(args, argv, preview),
                                  preview.controls.stop)
        return tune_and_save(args, argv, preview)
    finally:
        preview.close()


def tune_and_save(args: argparse.Namespace, argv: list[str], preview: Any) -> int:
    """Measure, fine-tune and save (``preview``: a CalibrationPreview to keep up to date)."""
    import torch

    from models import create_model, load_metadata, weights_path
    from models.calibrate_profile import Profile, file_hash, plot_title, save_profile
    from models.calibrate_tune import (
        TuneConfig,
        finetune,
        forgetting,
        gains,
        prepare,
        replay_images,
    )
    from models.estimate import estimator_for

    torch.set_num_threads(args.threads)
    m = measure(args, preview)
    if not args.quiet:
        print_measurement(m)
    if preview is not None:
        if preview.picture is None and m.samples:
            preview.picture = m.samples[0].noisy
        preview.update(force=True, nlf=m.nlf, phase="tuning", done=0, total=args.steps,
                       plot_title=plot_title(args.name, m.kind, m.used, m.nlf), detail="")
    base = create_model(args.model)
    items, held = calibcheck.split(prepare(m.samples, m, estimator_for(args.model)))
    replay, replay_name = replay_images(m)
    cfg = TuneConfig(steps=args.steps)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, unit="step", file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_step(step: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss:.4f}")
        if preview is not None:
            preview.update(force=step == cfg.steps, done=step, loss=loss)

    t0 = time.perf_counter()
    try:
        tuned, info = finetune(base, items, replay, m.nlf, cfg, on_step)
    finally:
        if bar is not None:
            bar.close()
    if preview is not None:
        preview.update(force=True, phase="gains", done=info["steps"])
    measured = {**gains(base, tuned, items), **forgetting(base, tuned),
                **calibcheck.check(args.model, {"base": base, "tuned": tuned}, held)}
    noise_map = "nlf" if measured["seen_tuned_nlf"] > measured["seen_tuned_estimate"] else "estimate"
    kept = not held or measured["check_tuned"] > measured["check_base"]
    if not kept:  # the tune did not help on what it never saw: the profile runs the original
        noise_map, tuned = "estimate", base
        log.warning("the tuned %s scored %.2f dB on %d held-out sample(s) against the original's "
                    "%.2f: the profile keeps the original weights and the blind noise reading",
                    args.model, measured["check_tuned"], len(held), measured["check_base"])
    measured["tuned_kept"] = float(kept)
    base_hash = file_hash(weights_path(args.model))
    profile = Profile(
        name=args.name, model=args.model, base_hash=base_hash, source=m.source, kind=m.kind,
        used=m.used, data_hash=m.data_hash, nlf=m.nlf, correlation=m.correlation,
        noise_map=noise_map, size=m.size, steps=info["steps"], minutes=round(info["minutes"], 2),
        gains=measured, notes=m.notes + [f"replay: {replay_name}"])
    metadata = {
        **{k: v for k, v in load_metadata(args.model).items() if k in ("estimator", "form")},
        "model": args.model, "base_model_sha256_16": base_hash,
        "command": "python -m stream calibrate " + shlex.join(argv),
        "source": m.source, "kind": m.kind, "used": str(m.used), "data_hash": m.data_hash,
        "steps": str(info["steps"]), "train_minutes": f"{info['minutes']:.2f}",
        "tune": str(cfg), "device": "cpu", "threads": str(args.threads),
        "gains": str(measured), "noise_map": noise_map,
    }
    if preview is not None and preview.controls.stop.is_set():
        raise KeyboardInterrupt  # stopped while the gains were measured: nothing written
    folder = save_profile(profile, tuned.state_dict(), metadata)
    if not args.quiet:
        print(f"profile {args.name} ({args.model}, {info['steps']} steps, "
              f"{(time.perf_counter() - t0) / 60:.1f} min; noise map {noise_map}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in measured.items()) + f" -> {folder}")
    if preview is not None:
        seen = f"seen {measured['seen_base']:.2f} -> {measured['seen_tuned_' + noise_map]:.2f} dB"
        if held:
            seen += f", held out {measured['check_base']:.2f} -> {measured['check_tuned']:.2f}"
        preview.finish(f"saved ({seen}{'' if kept else ', original weights kept'}); q closes")
    return 0


def profiles_main(argv: list[str]) -> int:
    from models.calibrate_profile import cache_root, list_profiles

    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m stream profiles\n\nList the camera profiles "
              f"({cache_root()}) with their measured gains.")
        return 0
    found = list_profiles()
    if not found:
        print(f"no profiles in {cache_root()} (python -m stream calibrate ... --name NAME)")
        return 0
    for p in found:
        g = p.gains
        seen = (f"seen {g.get('seen_base', float('nan')):.2f} -> "
                f"{g.get('seen_tuned_' + p.noise_map, float('nan')):.2f} dB") if g else "no gains"
        if "check_base" in g:
            seen += (f", held out {g['check_base']:.2f} -> {g['check_tuned']:.2f} dB"
                     + ("" if g.get("tuned_kept", 1.0) else " (original weights kept)"))
        size = f", {p.size[0]}x{p.size[1]}" if p.size else ""
        print(f"{p.name}\t{p.model}\t{p.kind} ({p.used}{size})\tlevel {p.nlf.level():.2f}\t"
              f"map {p.noise_map}\t{seen}\t{p.source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(args.verbose)
    try:
        return calibrate(args, argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; no profile written", file=sys.stderr)
        return 130

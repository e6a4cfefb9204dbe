"""Does denoising help the detectors that come after it?  ``python -m models eval-downstream``.

    python -m models eval-downstream --images ../shared/data/bsds500/test --sigma 10,25,50 \\
        --models fast,base --strength 0.5,0.75,1.0 --json downstream.json

Detectors that ship inside OpenCV run on clean, noisy and denoised copies of the same pictures:
the Haar frontal-face cascade (``cv2.data``) and the HOG people detector on photos in which they
find something when clean (picked by running them over ``--images``; the chosen ids are listed),
the QR code detector and the ArUco detector on scenes this command renders itself (a QR code
or ArUco markers warped in perspective and blurred onto a photo from ``--images``, seeded, so
nothing is downloaded; ``models.lab.downstream_scenes``).  Noise is white Gaussian, clipped and rounded to 8 bits (what a camera
or a file hands a detector).  The clean picture's detections are the reference: recall and
precision at IoU >= 0.5, pooled over images; for QR and ArUco the decode rate (the rendered
payload / marker ids read back, wrong reads count as misses).  Denoisers: each model told the
true sigma and with its own auto reading (``estimate.estimator_for``), each times every
``--strength`` (the level capped at 75, as the product does); OpenCV NLM at h = 0.6 sigma (about
its best PSNR, see ../shared/data/README.md).

The models run through the product's engine (``engines.open_engine``, torch on the CPU: the
fp32 net on the 8-bit frame, output rounded to 8 bits), through ``evaluate.denoise``.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from .downstream_scenes import (
    ARUCO_DICT,
    Scene,
    add_noise,
    image_paths,
    pick_people,
    render_aruco,
    render_qr,
)

log = logging.getLogger("models.lab.eval_downstream")

MAX_LEVEL = 75.0  # the product caps the level it gives a model here (stream --strength)


# -- detectors (BGR uint8 in) -----------------------------------------------------------------

class Detectors:
    """The detectors this OpenCV has.  OpenCV 5 moved the Haar cascades (and their XML files)
    and the HOG people detector to opencv_contrib: with the ``opencv-python`` 5.x wheel only
    QR and ArUco are measured, and ``missing`` says why the others are not."""

    def __init__(self) -> None:
        self.missing: dict[str, str] = {}
        self.face = self.hog = None
        xml = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".") / "haarcascade_frontalface_default.xml"
        if not hasattr(cv2, "CascadeClassifier") or not xml.is_file():
            self.missing["face"] = f"OpenCV {cv2.__version__} has no Haar cascades (moved to opencv_contrib in 5.0)"
        else:
            self.face = cv2.CascadeClassifier(str(xml))
        if not hasattr(cv2, "HOGDescriptor"):
            self.missing["person"] = f"OpenCV {cv2.__version__} has no HOG people detector (moved to opencv_contrib in 5.0)"
        else:
            self.hog = cv2.HOGDescriptor()
            self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.qr = cv2.QRCodeDetector()
        self.aruco = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(ARUCO_DICT),
                                             cv2.aruco.DetectorParameters())

    def faces(self, bgr: np.ndarray) -> np.ndarray:
        if self.face is None:
            return np.zeros((0, 4), np.float32)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        found = self.face.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
        return np.asarray(found, np.float32).reshape(-1, 4)

    def people(self, bgr: np.ndarray) -> np.ndarray:
        if self.hog is None:
            return np.zeros((0, 4), np.float32)
        found, weights = self.hog.detectMultiScale(bgr, winStride=(8, 8), padding=(8, 8), scale=1.05)
        found = np.asarray(found, np.float32).reshape(-1, 4)
        weights = np.asarray(weights, np.float32).reshape(-1)
        return found[weights > 0.5] if len(found) else found  # OpenCV's sample uses this cut

    def qr_text(self, bgr: np.ndarray) -> str:
        text, _, _ = self.qr.detectAndDecode(bgr)
        return text

    def aruco_ids(self, bgr: np.ndarray) -> set[int]:
        _, ids, _ = self.aruco.detectMarkers(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        return set() if ids is None else {int(i) for i in ids.reshape(-1)}


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (N, 4) and (M, 4) x, y, w, h boxes."""
    ax2, ay2, bx2, by2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def matches(ref: np.ndarray, det: np.ndarray, thresh: float = 0.5) -> int:
    """Greedy one-to-one matches at IoU >= thresh, best pairs first."""
    if not len(ref) or not len(det):
        return 0
    m = iou(ref, det)
    n = 0
    while True:
        i, j = np.unravel_index(np.argmax(m), m.shape)
        if m[i, j] < thresh:
            return n
        n += 1
        m[i, :], m[:, j] = -1, -1


# -- denoisers --------------------------------------------------------------------------------

def nlm(rgb: np.ndarray, sigma: float) -> np.ndarray:
    h = 0.6 * sigma
    bgr = cv2.fastNlMeansDenoisingColored(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), None, h, h, 7, 21)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def method_names(models: list[str], strengths: list[float], nlm_on: bool) -> list[str]:
    names = ["clean", "noisy"] + (["nlm"] if nlm_on else [])
    for m in models:
        for mode in ("told", "auto"):
            names += [f"{m} {mode} x{s:g}" for s in strengths]
    return names


def denoised_copies(noisy: np.ndarray, sigma: float, nets: dict[str, object], strengths: list[float],
                    nlm_on: bool) -> dict[str, np.ndarray]:
    from ..estimate import estimator_for
    from .evaluate import denoise

    out = {"noisy": noisy}
    if nlm_on:
        out["nlm"] = nlm(noisy, sigma)
    for name, net in nets.items():
        auto = float(estimator_for(name)(noisy))
        for mode, level in (("told", sigma), ("auto", auto)):
            for s in strengths:
                given = min(MAX_LEVEL, level * s)
                out[f"{name} {mode} x{s:g}"] = denoise(net, noisy, given)
    return out


# -- scoring ----------------------------------------------------------------------------------

def score(scenes: list[Scene], copies: list[dict[str, np.ndarray]], det: Detectors) -> dict[str, dict]:
    """Per method: face/person recall and precision (pooled), QR/ArUco decode rates, PSNR."""
    from ..metrics import psnr

    rows: dict[str, dict] = {}
    for scene, by_method in zip(scenes, copies):
        for method, rgb in by_method.items():
            r = rows.setdefault(method, {"face": [0, 0, 0], "person": [0, 0, 0], "qr": [0, 0],
                                         "aruco": [0, 0], "psnr": []})
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if method != "clean":
                r["psnr"].append(psnr(rgb.astype(np.float64), scene.clean.astype(np.float64), 255.0))
            if scene.kind == "people":
                for kind, found in (("face", det.faces(bgr)), ("person", det.people(bgr))):
                    ref = scene.ref[kind]
                    r[kind][0] += matches(ref, found)
                    r[kind][1] += len(ref)
                    r[kind][2] += len(found)
            elif scene.kind == "qr":
                r["qr"][0] += det.qr_text(bgr) == scene.payload
                r["qr"][1] += 1
            else:
                r["aruco"][0] += len(det.aruco_ids(bgr) & scene.payload)
                r["aruco"][1] += len(scene.payload)
    report = {}
    for method, r in rows.items():
        row: dict[str, object] = {}
        for kind in ("face", "person"):
            hit, n_ref, n_det = r[kind]
            row[kind] = {"recall": hit / n_ref if n_ref else None,
                         "precision": hit / n_det if n_det else None,
                         "n_ref": n_ref, "n_found": n_det}
        for kind in ("qr", "aruco"):
            hit, n = r[kind]
            row[f"{kind}_decode"] = hit / n if n else None
        row["psnr"] = float(np.mean(r["psnr"])) if r["psnr"] else None
        report[method] = row
    return report


def print_table(sigma: float, rows: dict[str, dict]) -> None:
    def f(v: object) -> str:
        return "   -" if v is None else f"{v:4.2f}"

    print(f"\nsigma {sigma:g}")
    print(f"  {'method':<22} {'face R':>6} {'face P':>6} {'pers R':>6} {'pers P':>6} {'QR':>5} {'ArUco':>5} {'PSNR':>6}")
    for name, r in rows.items():
        ps = "     -" if r["psnr"] is None else f"{r['psnr']:6.2f}"
        print(f"  {name:<22} {f(r['face']['recall']):>6} {f(r['face']['precision']):>6} "
              f"{f(r['person']['recall']):>6} {f(r['person']['precision']):>6} "
              f"{f(r['qr_decode']):>5} {f(r['aruco_decode']):>5} {ps}")


# -- command line -----------------------------------------------------------------------------

def _floats(text: str, what: str, lo: float, hi: float) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(not (lo <= v <= hi) for v in values):
        raise ValueError(f"{what}: expected numbers in {lo:g}..{hi:g}, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models eval-downstream", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True,
                   help="folder of photos (searched recursively): people/faces are picked from it, "
                        "and it gives the backgrounds of the rendered QR/ArUco scenes")
    p.add_argument("--sigma", default="10,25,50", help="noise levels, 0..255 units (default 10,25,50)")
    p.add_argument("--models", default="fast,base", help="registered models, comma-separated, or 'none'")
    p.add_argument("--strength", default="1", help="multipliers of the level given, e.g. 0.5,0.75,1 (0..10)")
    p.add_argument("--people", type=int, default=24, help="at most N photos with faces/people (default 24)")
    p.add_argument("--qr", type=int, default=12, help="QR scenes to render (default 12)")
    p.add_argument("--aruco", type=int, default=12, help="ArUco scenes to render, 3 markers each (default 12)")
    p.add_argument("--no-nlm", action="store_true", help="leave out the OpenCV NLM baseline")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the models (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with ExitStack() as engines:  # closing an engine gives back the torch threads it set
        return _main(args, engines)


def _main(args: argparse.Namespace, engines: ExitStack) -> int:
    try:
        sigmas = _floats(args.sigma, "--sigma", 0, 255)
        strengths = _floats(args.strength, "--strength", 0, 10)
        for what in ("people", "qr", "aruco", "threads"):
            if getattr(args, what) < (1 if what == "threads" else 0):
                raise ValueError(f"--{what}: expected a whole number >= {1 if what == 'threads' else 0}, "
                                 f"got {getattr(args, what)}")
        paths = image_paths(args.images)
        names = [] if args.models == "none" else [m for m in args.models.split(",") if m]
        from engines import open_engine

        from ..registry import get_spec
        for m in names:
            if get_spec(m).temporal:
                raise ValueError(f"--models: {m} is a video (temporal) model; expected per-frame models")
        nets = {m: engines.enter_context(open_engine(m, backend="torch", device="cpu", threads=args.threads))
                for m in names}
    except (ValueError, FileNotFoundError) as e:  # UnknownModelError and EngineError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    det = Detectors()
    for why in det.missing.values():
        print(f"note: {why}; not measured", file=sys.stderr)
    try:
        scenes = pick_people(paths, det, args.people) + render_qr(paths, args.qr, args.seed) \
            + render_aruco(paths, args.aruco, args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not scenes:
        print(f"error: nothing to measure: no faces or people found in {args.images} and --qr/--aruco 0",
              file=sys.stderr)
        return 2
    people = [s.id for s in scenes if s.kind == "people"]
    report: dict[str, object] = {
        "images": str(args.images), "people_ids": people,
        "n_faces": int(sum(len(s.ref["face"]) for s in scenes if s.kind == "people")),
        "n_people": int(sum(len(s.ref["person"]) for s in scenes if s.kind == "people")),
        "qr_scenes": args.qr, "aruco_scenes": args.aruco, "aruco_markers": 3 * args.aruco, "seed": args.seed,
        "noise": "white Gaussian, clipped and rounded to 8 bits",
        "models": names, "strengths": strengths,
        "opencv": cv2.__version__, "not_measured": det.missing,
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, {__import__('os').cpu_count()} cores",
        "methods": method_names(names, strengths, not args.no_nlm), "sigma": {},
    }
    print(f"{len(people)} photos with faces/people ({report['n_faces']} faces, {report['n_people']} people "
          f"when clean): {', '.join(people) or '-'}; {args.qr} QR and {args.aruco} ArUco scenes")
    for sigma in sigmas:
        copies = []
        for i, scene in enumerate(scenes):
            noisy = add_noise(scene.clean, sigma, seed=args.seed * 1000 + i)
            by_method = {"clean": scene.clean}
            by_method.update(denoised_copies(noisy, sigma, nets, strengths, not args.no_nlm))
            copies.append(by_method)
        rows = score(scenes, copies, det)
        report["sigma"][f"{sigma:g}"] = rows
        print_table(sigma, rows)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

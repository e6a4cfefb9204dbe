"""A camera's profile on disk: a folder under the user's cache (``cache_root``) holding
``profile.json`` (the measurement of ``models.calibrate`` and the gains of the tune),
``weights.safetensors`` (the fine-tuned model, full metadata) and ``noise.png`` (the curve).
It is written to a temporary folder and renamed into place, so a failed calibration leaves
nothing half-written.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .calibrate import CalibrationError, Nlf


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/denoise-stream/profiles`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "denoise-stream" / "profiles"


def check_name(name: str) -> str:
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
        raise CalibrationError(f"--name: expected letters, digits, '-', '_' or '.', got {name!r}")
    return name


@dataclass
class Profile:
    name: str
    model: str
    base_hash: str  # sha256[:16] of the base model's weights file
    source: str
    kind: str
    used: int
    data_hash: str
    nlf: Nlf
    correlation: dict[str, float]
    noise_map: str = "estimate"  # what the tuned model is given: "estimate" (auto) or "nlf"
    size: tuple[int, int] | None = None
    steps: int = 0
    minutes: float = 0.0
    gains: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None  # where it was loaded from

    @property
    def weights(self) -> Path:
        if self.folder is None:
            raise CalibrationError(f"profile {self.name!r} has not been saved")
        return self.folder / "weights.safetensors"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("folder")
        return d

    @classmethod
    def from_json(cls, d: dict, folder: Path | None = None) -> Profile:
        d = dict(d)
        d["nlf"] = Nlf(**d["nlf"])
        d["size"] = tuple(d["size"]) if d.get("size") else None
        return cls(**d, folder=folder)


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def save_profile(profile: Profile, state: dict, metadata: dict[str, str],
                 root: Path | None = None) -> Path:
    """Write the profile folder atomically: everything into a temporary folder beside it,
    then one rename (an older profile of that name is replaced only once the new one is whole)."""
    from safetensors.torch import save_file

    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / check_name(profile.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{profile.name}.", dir=root))
    try:
        meta = {**metadata, "profile": json.dumps(profile.to_json())}
        save_file({k: v.detach().float().contiguous().cpu() for k, v in state.items()},
                  str(tmp / "weights.safetensors"), metadata=meta)
        cv2.imwrite(str(tmp / "noise.png"), plot_nlf(profile.nlf, plot_title(
            profile.name, profile.kind, profile.used, profile.nlf)))
        (tmp / "profile.json").write_text(json.dumps(profile.to_json(), indent=1) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; a profile is an ordinary folder
        old = None
        if final.exists():
            old = root / f".{profile.name}.old-{os.getpid()}"
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    profile.folder = final
    return final


def load_profile(name: str, root: Path | None = None) -> Profile:
    root = root or cache_root()
    folder = root / name
    if not (folder / "profile.json").is_file() or not (folder / "weights.safetensors").is_file():
        known = ", ".join(p.name for p in list_profiles(root)) or "none yet"
        raise CalibrationError(f"no profile {name!r} in {root} (profiles: {known}; make one with "
                               "python -m stream calibrate)")
    try:
        return Profile.from_json(json.loads((folder / "profile.json").read_text()), folder)
    except (ValueError, TypeError, KeyError) as exc:
        raise CalibrationError(f"profile {name!r} in {root} is unreadable ({exc})") from None


def list_profiles(root: Path | None = None) -> list[Profile]:
    root = root or cache_root()
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            out.append(Profile.from_json(json.loads((folder / "profile.json").read_text()), folder))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return out


def plot_title(name: str, kind: str, used: int, nlf: Nlf) -> str:
    """The title of ``noise.png`` (and of the curve the calibration preview draws)."""
    return f"{name} ({kind}, {used} used): level {nlf.level():.2f}"


def plot_nlf(nlf: Nlf, title: str, size: tuple[int, int] = (480, 320)) -> np.ndarray:
    """The noise curve as a BGR image: std per channel against brightness."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 46, 12, 28, 34
    std = nlf.array()
    top_val = max(1.0, float(np.nanmax(std)) * 1.15) if np.isfinite(std).any() else 1.0
    def xy(b: float, s: float) -> tuple[int, int]:
        return (int(left + b / 255 * (w - left - right)),
                int(h - bottom - s / top_val * (h - top - bottom)))
    cv2.rectangle(img, xy(0, 0), xy(255, top_val), (0, 0, 0), 1)
    for s in np.linspace(0, top_val, 5)[1:]:
        cv2.putText(img, f"{s:.1f}", (4, xy(0, s)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
    for b in (0, 64, 128, 192, 255):
        cv2.putText(img, str(b), (xy(b, 0)[0] - 8, h - bottom + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0))
    cv2.putText(img, "brightness (0..255); noise std per channel", (left, h - 6),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0))
    cv2.putText(img, title[:60], (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0))
    for c, colour in enumerate(((0, 0, 220), (0, 160, 0), (220, 0, 0))):  # R, G, B in BGR
        pts = [xy(x, s) for x, s in zip(nlf.centres, std[c]) if np.isfinite(s)]
        for p, q in itertools.pairwise(pts):
            cv2.line(img, p, q, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
    return img

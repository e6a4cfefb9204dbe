"""``--profile NAME``: a camera profile (``python -m stream calibrate``) in a run.

The profile gives the weights (its fine-tuned model) and, when its calibration measured that
better (``noise_map: nlf``), the noise map: its noise level function read per pixel from the
frame's brightness, scaled so that its root mean square is the level the processor decided
(``--strength`` and the cap still apply; the processor's estimate then is the NLF's level).
"""
from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import UserError

log = logging.getLogger(__name__)


def load(name: str, model: str | None) -> Any:
    """The profile ``name`` for a run asked to use ``model`` (None: the profile's)."""
    from models.calibrate_profile import load_profile

    profile = load_profile(name)  # a CalibrationError is a UserError
    if model is not None and model != profile.model:
        raise UserError(f"--profile {name} was made for model {profile.model}, not {model}; "
                        f"drop --model or calibrate {model} (python -m stream calibrate ... "
                        f"--model {model})")
    return profile


def check_size(profile: Any, width: int | None, height: int | None, source: str,
               camera: bool = False, video: bool = True) -> None:
    """Refuse frames of another size than the clip or camera the profile was measured on: the
    same camera at another resolution scales (and so smooths, sharpens, correlates) its noise
    differently in the camera, so neither the NLF nor the tuned weights carry over.  A profile
    from ``--pairs`` (photos at the sensor's own resolution, in crops) has no frame size; a
    clip profile from before sizes were kept is taken, with a warning."""
    if profile.kind == "pairs" or width is None or height is None:
        return
    if profile.size is None:
        log.warning("--profile %s does not say which frame size it was made for (an older "
                    "profile); using it for %dx%d unchecked", profile.name, width, height)
        return
    pw, ph = profile.size
    if (pw, ph) != (width, height):
        size = f" --size {width}x{height}" if camera else ""
        clip = shlex.quote(source) if video else f"STILL_CLIP_{width}x{height}"
        raise UserError(f"--profile {profile.name} was made for {pw}x{ph} frames, not "
                        f"{width}x{height} ({source}); a camera's noise changes with the picture "
                        f"size: calibrate for this one (python -m stream calibrate "
                        f"{clip}{size} --name {profile.name}-{width}x{height})")


def nlf_level(profile: Any) -> Callable[[np.ndarray], float]:
    """The frame's noise level by the profile: root mean square of its NLF map."""
    from models.calibrate import nlf_map

    return lambda image: float(np.sqrt(np.mean(nlf_map(image, profile.nlf) ** 2)))


class NlfEngine:
    """An engine whose per-frame level becomes the profile's per-pixel map of that level."""

    def __init__(self, engine: Any, profile: Any) -> None:
        self._engine = engine
        self._nlf = profile.nlf

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def infer(self, frames: np.ndarray, sigma: Any, prev: np.ndarray | None = None) -> np.ndarray:

        sig = np.asarray(sigma, np.float32)
        if sig.ndim > 1 or frames.ndim != 4:  # already a map: as given
            return self._engine.infer(frames, sigma, prev)
        sig = np.broadcast_to(sig, (frames.shape[0],))
        maps = [self.level_map(frame, float(s)) for frame, s in zip(frames, sig)]
        return self._engine.infer(frames, np.stack(maps).astype(np.float32), prev)

    def level_map(self, frame: np.ndarray, sigma: float) -> np.ndarray:
        """The profile's NLF read from the frame's brightness, scaled to root mean square
        ``sigma``: (H, W) float32 (the processor scales it further where it averaged inputs)."""
        from models.calibrate import nlf_map

        m = nlf_map(frame, self._nlf)
        rms = float(np.sqrt(np.mean(m * m)))
        return (m * (sigma / rms) if rms > 0 else np.full_like(m, sigma)).astype(np.float32)

    def close(self) -> None:
        self._engine.close()

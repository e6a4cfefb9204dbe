"""What the preview window draws: pure functions from a frame and some numbers to an RGB image.

Views: the denoised picture; a before/after split at a divider; the removed noise (input minus
output, amplified around mid-grey: what the model decided was noise); a noise-level map (local
noise estimate, colour-coded). Over every view: a HUD (fps, latency, dropped frames, model,
backend, estimated sigma, strength, temporal) and a bar listing the keys. Nothing here opens a
window, so all of it is tested on plain arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .frame import Frame

VIEWS = ("denoised", "split", "noise", "map")
VIEW_LABELS = {"denoised": "denoised", "split": "split noisy | denoised",
               "noise": "removed noise x{gain:g}", "map": "noise-level map"}
KEYS_HELP = ("s split   n removed noise   m noise map   +/- strength   t temporal   "
             "space pause   q/Esc quit   <-/-> divider")
NOISE_GAIN = 4.0
MAP_SIGMA_MAX = 50.0  # 0..255 units at the top of the colour scale
# waitKeyEx codes of the arrow keys differ by GUI backend (Qt, GTK, Win32, Cocoa).


@dataclass
class PreviewState:
    """What the viewer chose: view, divider position (fraction of the width), quit."""

    view: str = "denoised"
    divider: float = 0.5
    dragging: bool = False
    quit: bool = False


@dataclass
class Hud:
    """The numbers shown over the picture."""

    fps: float = 0.0
    latency_ms: float = math.nan
    dropped: int = 0
    model: str = "?"
    backend: str = "?"
    sigma: float | None = None
    coarse: str = "off"  # the phase split's mode on coarse camera noise (engines.phase_split)
    strength: float = 1.0
    temporal: bool = False
    paused: bool = False
    tier: str = ""  # --model auto: which tier runs and why


def split_view(before: np.ndarray, after: np.ndarray, x: int) -> np.ndarray:
    """Columns [0, x) from ``before``, [x, W) from ``after``, a 2-pixel white divider at x."""
    if before.shape != after.shape:
        raise ValueError(f"expected equal shapes, got {before.shape} and {after.shape}")
    w = after.shape[1]
    x = max(0, min(w, int(x)))
    out = after.copy()
    out[:, :x] = before[:, :x]
    out[:, max(0, x - 1):min(w, x + 1)] = 255
    return out


def residual_view(before: np.ndarray, after: np.ndarray, gain: float = NOISE_GAIN) -> np.ndarray:
    """The removed noise, ``128 + gain * (before - after)``, clipped to uint8."""
    diff = before.astype(np.float32) - after.astype(np.float32)
    return np.clip(128.0 + gain * diff, 0, 255).round().astype(np.uint8)


def noise_level_map(image: np.ndarray, block: int = 16) -> np.ndarray:
    """Local noise std (0..255 units, per RGB channel like the model's sigma) per ``block`` x
    ``block`` cell, shape (ceil(H/b), ceil(W/b)).

    Immerkaer's estimator: the 3x3 Laplacian-difference kernel cancels smooth image structure,
    and the mean absolute response times sqrt(pi/2)/6 is the Gaussian noise std. Strong edges
    read as noise too, as with every local estimator; the map is for seeing, not measuring.
    """
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    # |response| saturates at 255 (sigma about 50): only strong edges are clipped, which
    # keeps them from swamping the map. OpenCV calls throughout: this runs per shown frame.
    resp = cv2.convertScaleAbs(cv2.filter2D(image, cv2.CV_16S, kernel,
                                            borderType=cv2.BORDER_REFLECT))
    h, w = resp.shape[:2]
    gh, gw = -(-h // block), -(-w // block)
    resp = cv2.copyMakeBorder(resp, 0, gh * block - h, 0, gw * block - w, cv2.BORDER_REPLICATE)
    cells = cv2.resize(resp.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    return cells.reshape(gh, gw, -1).mean(axis=2) * (math.sqrt(math.pi / 2) / 6.0)


def noise_map_view(image: np.ndarray, sigma_max: float = MAP_SIGMA_MAX) -> np.ndarray:
    """The noise-level map coloured (blue low, red high, full scale = ``sigma_max``) over grey."""
    h, w = image.shape[:2]
    cells = noise_level_map(image)
    level = np.clip(cells / sigma_max * 255.0, 0, 255).astype(np.uint8)
    level = cv2.resize(level, (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(colour, 0.7, grey, 0.3, 0.0)


def display_scale(width: int, height: int, max_size: tuple[int, int] = (1280, 720),
                  min_width: int = 640) -> float:
    """Scale for the window: small frames up to ``min_width`` (legible HUD), big ones to fit."""
    up = max(1.0, min_width / width)
    down = min(max_size[0] / width, max_size[1] / height)
    return min(up, down) if down < 1.0 else up


def _text_scale(height: int) -> float:
    return max(0.5, min(1.0, height / 720 * 0.7))


def _text_block(img: np.ndarray, lines: list[str], org: tuple[int, int], scale: float,
                anchor_bottom: bool = False) -> None:
    """White text on a dark translucent box, in place."""
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1 if scale < 0.7 else 2
    sizes = [cv2.getTextSize(t, font, scale, thick)[0] for t in lines]
    line_h = max(s[1] for s in sizes) + int(10 * scale)
    box_w = max(s[0] for s in sizes) + int(16 * scale)
    box_h = line_h * len(lines) + int(8 * scale)
    x, y = org
    if anchor_bottom:
        y -= box_h
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + box_w), min(h, y + box_h)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * 0.35).astype(np.uint8)
    for i, t in enumerate(lines):
        base = (x + int(8 * scale), y + line_h * (i + 1) - int(2 * scale))
        cv2.putText(img, t, base, font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _label_halves(img: np.ndarray, x: int, scale: float) -> None:
    """"noisy" left of the divider, "denoised" right of it, just above the key bar."""
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1 if scale < 0.7 else 2
    (tw, th), _ = cv2.getTextSize("noisy", font, scale, thick)
    y = img.shape[0] - int(2.6 * th) - 12
    _text_block(img, ["noisy"], (x - tw - int(22 * scale), y), scale, anchor_bottom=True)
    _text_block(img, ["denoised"], (x + 4, y), scale, anchor_bottom=True)


def _colour_bar(img: np.ndarray, scale: float, sigma_max: float = MAP_SIGMA_MAX) -> None:
    """The noise map's scale, bottom right above the key bar: sigma 0 .. sigma_max."""
    h, w = img.shape[:2]
    bar_w, bar_h = int(160 * scale / 0.5), max(6, int(10 * scale / 0.5))
    ramp = np.linspace(0, 255, bar_w).astype(np.uint8)[None].repeat(bar_h, 0)
    bar = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    x0, y0 = w - bar_w - 12, h - int(60 * scale / 0.5)
    if x0 < 0 or y0 - bar_h < 0:
        return
    img[y0:y0 + bar_h, x0:x0 + bar_w] = bar
    _text_block(img, [f"sigma 0 .. {sigma_max:g}"], (x0, y0), scale * 0.8, anchor_bottom=True)


def hud_lines(hud: Hud, view: str) -> list[str]:
    lat = "-" if math.isnan(hud.latency_ms) else f"{hud.latency_ms:.0f} ms"
    sigma = "-" if hud.sigma is None else f"{hud.sigma:.1f}"
    lines = [
        f"{hud.fps:4.1f} fps   latency {lat}   dropped {hud.dropped}",
        f"{hud.model} on {hud.backend}   sigma {sigma}"
        + (f"   coarse noise: {hud.coarse}" if hud.coarse != "off" else ""),
        *([hud.tier] if hud.tier else []),
        (f"strength {hud.strength:.1f}   temporal {'on' if hud.temporal else 'off'}   "
         f"view {VIEW_LABELS[view].format(gain=NOISE_GAIN)}"),
    ]
    if hud.paused:
        lines.append("PAUSED (space resumes)")
    return lines


def render(frame: Frame, state: PreviewState, hud: Hud,
           max_size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """The picture the window shows for ``frame`` (RGB uint8), HUD and key bar included."""
    after = frame.image
    before = frame.original if frame.original is not None else after
    h, w = after.shape[:2]
    scale = display_scale(w, h, max_size)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
        after, before = (cv2.resize(a, size, interpolation=interp) for a in (after, before))
        h, w = after.shape[:2]
    ts = _text_scale(h)
    if state.view == "split":
        x = round(state.divider * w)
        img = split_view(before, after, x)
        _label_halves(img, x, ts)
    elif state.view == "noise":
        img = residual_view(before, after)
    elif state.view == "map":
        img = noise_map_view(before)
        _colour_bar(img, ts)
    else:
        img = after.copy()
    _text_block(img, hud_lines(hud, state.view), (0, 0), ts)
    _text_block(img, [KEYS_HELP], (0, h), ts * 0.8, anchor_bottom=True)
    return img

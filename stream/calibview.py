"""The preview window while ``python -m stream calibrate`` runs: what the camera sees, the
phase (reading still frames k of N, measuring the noise, fine-tuning step k of N), a progress
bar and the measured noise curve (the same picture as the profile's ``noise.png``).

``canvas`` is a pure function from a status to an RGB image (tested on arrays);
``CalibrationPreview`` shows it in the preview window (``stream.preview.PreviewWindow``, which
draws it as it is, without the denoiser's HUD). q, Esc or closing the window stop the
calibration: the next update raises ``KeyboardInterrupt``, so nothing is written. The
denoiser's other keys (views, strength, space) do nothing here.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# The picture on the left (fitted, letterboxed), a panel of PANEL_W on the right: text lines
# and the progress bar in TEXT_H, under them the noise curve at plot_nlf's size (480 x 320).
PICTURE_W, PANEL_W, TEXT_H, PLOT_H = 640, 480, 120, 320
HEIGHT = TEXT_H + PLOT_H
BACKGROUND = (32, 32, 32)  # RGB
TEXT_COLOUR = (255, 255, 255)
BAR_COLOUR = (60, 200, 90)
BAR_BOX = (12, 74, PANEL_W - 12, 92)  # x0, y0, x1, y1 within the panel
FONT, TEXT_SCALE, TEXT_THICKNESS = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1
LINE_Y = (26, 54, 116)  # text baselines within the panel: title, phase, detail
HOLD_SECONDS = 10.0  # the finished screen stays up this long (q closes it sooner)


@dataclass
class Status:
    """Where a calibration is: ``phase`` one of reading, measuring, tuning, gains, done."""

    name: str
    phase: str = "reading"
    done: int = 0
    total: int = 0
    loss: float | None = None
    nlf: Any = None  # models.calibrate.Nlf once measured
    plot_title: str = ""
    detail: str = ""


def phase_line(s: Status) -> str:
    if s.phase == "reading":
        return f"reading still frames {s.done} of {s.total}"
    if s.phase == "measuring":
        return "measuring the noise of the still frames"
    if s.phase in ("tuning", "gains", "done"):
        loss = f"   loss {s.loss:.4f}" if s.loss is not None else ""
        return f"fine-tuning step {s.done} of {s.total}{loss}"
    return s.phase


def fraction(s: Status) -> float:
    if s.phase == "measuring":
        return 1.0
    return min(1.0, s.done / s.total) if s.total > 0 else 0.0


def put_text(img: np.ndarray, text: str, org: tuple[int, int]) -> None:
    cv2.putText(img, text, org, FONT, TEXT_SCALE, TEXT_COLOUR, TEXT_THICKNESS, cv2.LINE_AA)


def _fit(picture: np.ndarray, w: int, h: int) -> np.ndarray:
    out = np.empty((h, w, 3), np.uint8)
    out[:] = BACKGROUND
    ph, pw = picture.shape[:2]
    scale = min(w / pw, h / ph)
    size = (max(1, round(pw * scale)), max(1, round(ph * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    small = cv2.resize(picture, size, interpolation=interp)
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    out[y:y + size[1], x:x + size[0]] = small
    return out


def canvas(status: Status, picture: np.ndarray | None) -> np.ndarray:
    """The window's picture (HEIGHT, PICTURE_W + PANEL_W, 3) RGB uint8."""
    from models.calibrate_profile import plot_nlf

    img = np.empty((HEIGHT, PICTURE_W + PANEL_W, 3), np.uint8)
    img[:] = BACKGROUND
    if picture is not None:
        img[:, :PICTURE_W] = _fit(picture, PICTURE_W, HEIGHT)
    panel = img[:, PICTURE_W:]
    title = {"done": f"calibrated {status.name}", "gains": f"calibrating {status.name}: "
             "measuring the gains"}.get(status.phase, f"calibrating {status.name} (q stops)")
    put_text(panel, title, (12, LINE_Y[0]))
    put_text(panel, phase_line(status), (12, LINE_Y[1]))
    x0, y0, x1, y1 = BAR_BOX
    cv2.rectangle(panel, (x0, y0), (x1, y1), TEXT_COLOUR, 1)
    filled = round((x1 - x0 - 3) * fraction(status))
    if filled > 0:
        panel[y0 + 2:y1 - 1, x0 + 2:x0 + 2 + filled] = BAR_COLOUR
    if status.detail:
        put_text(panel, status.detail, (12, LINE_Y[2] - 4))
    if status.nlf is not None:
        plot = plot_nlf(status.nlf, status.plot_title)  # BGR, as noise.png
        panel[TEXT_H:TEXT_H + PLOT_H] = cv2.cvtColor(plot, cv2.COLOR_BGR2RGB)[:, :PANEL_W]
    else:
        put_text(panel, "noise curve: once the frames are read", (12, TEXT_H + PLOT_H // 2))
    return img


def show_as_is(frame: Any, *_: Any) -> np.ndarray:
    """A PreviewWindow renderer for a picture composed already (no denoiser HUD)."""
    return frame.image


class CalibrationPreview:
    """The preview window of one calibration; ``update`` redraws (at most ``rate`` a second
    unless ``force``) and raises KeyboardInterrupt once the viewer stopped it."""

    def __init__(self, name: str, rate: float = 10.0) -> None:
        from .live import LiveControls
        from .preview import PreviewWindow

        self.controls = LiveControls()
        self.window = PreviewWindow(f"calibrate {name} (q stops)", controls=self.controls,
                                    renderer=show_as_is)
        self.status = Status(name)
        self.picture: np.ndarray | None = None
        self.interval = 1.0 / rate
        self._last = 0.0
        self._shown = 0

    def update(self, picture: np.ndarray | None = None, force: bool = False,
               **changes: Any) -> None:
        if self.controls.stop.is_set():
            raise KeyboardInterrupt
        if self.controls.paused:  # space: a calibration does not pause (the window would freeze)
            self.controls.resume()
        if picture is not None:
            self.picture = picture
        for key, value in changes.items():
            setattr(self.status, key, value)
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        from .frame import Frame

        self._last = now
        self._shown += 1
        self.window.show(Frame(image=canvas(self.status, self.picture), index=self._shown))

    def finish(self, detail: str, hold: float = HOLD_SECONDS) -> None:
        """Show the finished screen until q (or ``hold`` seconds), then close."""
        self.update(force=True, phase="done", detail=detail)
        self.controls.stop.wait(hold)
        self.close()

    def close(self) -> None:
        self.controls.stop.set()
        self.window.close()


def run_beside_gui(work: Callable[[], int], stop: threading.Event) -> int:
    """``work()`` on a worker thread while the calling (main) thread serves the window
    (``preview.GUI_ON_MAIN_THREAD`` platforms); its result or exception comes back here."""
    from . import preview

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            box["error"] = exc
        finally:
            stop.set()

    worker = threading.Thread(target=run, name="calibrate")
    worker.start()
    try:
        preview.serve_gui(until=stop)
    except KeyboardInterrupt:
        stop.set()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["result"]

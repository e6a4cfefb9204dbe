"""The preview window: its keys, mouse and event loop (what it draws is in views.py).

Keys: s split, n removed noise, m noise map, +/- strength, t temporal, space pause, q/Esc quit,
arrows (or , .) move the split's divider, which the mouse also drags. Key and mouse handling
are pure functions on the state, tested without a display. The window runs on one GUI thread
(all HighGUI calls happen there); while paused it sleeps inside ``waitKey``, so a paused
preview costs next to no CPU.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

import cv2

from .errors import UserError
from .frame import Frame
from .live import LiveControls, LiveStats
from .pipeline import DropOldestQueue
from .views import Hud, PreviewState, render

log = logging.getLogger(__name__)

# +/- change the processor's strength (a factor on the noise level) in these steps.
STRENGTH_STEP = 0.1
STRENGTH_RANGE = (0.0, 3.0)
# waitKeyEx codes of the arrow keys differ by GUI backend (Qt, GTK, Win32, Cocoa).
_LEFT = {0x1000012, 65361, 2424832, 63234}
_RIGHT = {0x1000014, 65363, 2555904, 63235}


# --- input handling (pure: state in, state changed) ------------------------------------------

def handle_key(key: int, state: PreviewState, controls: LiveControls) -> bool:
    """Apply one key (``waitKeyEx`` code); True when the picture must be redrawn."""
    if key < 0:
        return False
    ch = chr(key & 0xFF).lower() if key < 0x110000 and (key & 0xFF) == key else ""
    if ch in ("q", "\x1b"):
        state.quit = True
        controls.stop.set()
    elif ch in ("s", "n", "m"):
        view = {"s": "split", "n": "noise", "m": "map"}[ch]
        state.view = "denoised" if state.view == view else view
    elif ch in ("+", "="):
        controls.strength = round(min(STRENGTH_RANGE[1], controls.strength + STRENGTH_STEP), 2)
    elif ch in ("-", "_"):
        controls.strength = round(max(STRENGTH_RANGE[0], controls.strength - STRENGTH_STEP), 2)
    elif ch == "t":
        controls.temporal = not controls.temporal
    elif ch == " ":
        controls.toggle_pause()
    elif key in _LEFT or ch in (",", "<"):
        state.divider = max(0.0, round(state.divider - 0.05, 2))
    elif key in _RIGHT or ch in (".", ">"):
        state.divider = min(1.0, round(state.divider + 0.05, 2))
    else:
        return False
    return True


def handle_mouse(event: int, x: int, width: int, state: PreviewState) -> bool:
    """Drag the divider (split view only); True when the picture must be redrawn."""
    if state.view != "split" or width <= 0:
        return False
    if event == cv2.EVENT_LBUTTONDOWN:
        state.dragging = True
    elif event == cv2.EVENT_LBUTTONUP:
        was, state.dragging = state.dragging, False
        if not was:
            return False
    elif not (event == cv2.EVENT_MOUSEMOVE and state.dragging):
        return False
    state.divider = min(1.0, max(0.0, x / width))
    return True


# --- the window ----------------------------------------------------------------------------

class PreviewWindow:
    """A HighGUI window on its own thread; :meth:`show` hands it the newest frame.

    Frames that arrive faster than the window draws replace each other (the display is a
    live output). Keys and mouse update ``state`` and the shared ``controls`` (strength,
    temporal, pause, stop). The HUD's numbers come from ``stats`` and the frames themselves.
    """

    def __init__(
        self,
        title: str = "denoise preview (q quits)",
        *,
        controls: LiveControls | None = None,
        stats: LiveStats | None = None,
        model: str = "?",
        backend: str = "?",
        state: PreviewState | None = None,
        max_size: tuple[int, int] = (1280, 720),
        renderer: Callable[..., Any] = render,
    ) -> None:
        self.title = title
        # (frame, state, hud, max_size) -> RGB picture; the calibration (stream/calibview.py)
        # hands pictures composed already
        self.renderer = renderer
        self.controls = controls or LiveControls()
        self.stats = stats or LiveStats()
        self.model, self.backend = model, backend
        self.tier: Callable[[], str] | None = None  # --model auto: the tier and why, per draw
        self.state = state or PreviewState()
        self.max_size = max_size
        self.shown = 0  # frames drawn (not counting redraws)
        self.gui_thread = ""  # name of the thread running the window loop
        self._inbox: DropOldestQueue = DropOldestQueue(1, droppable=lambda item: True)
        self._drawn = threading.Condition()
        self._given = self._drawn_ticket = 0
        self._current: Frame | None = None
        self._width = 0
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._opened = threading.Event()
        no_display = display_missing()
        if no_display:
            raise UserError(no_display)
        _gui_thread().put(self._run)
        if GUI_ON_MAIN_THREAD:
            return  # the caller's serve_gui opens it later, on the main thread
        if not self._opened.wait(10.0) or self._error is not None:
            reason = str(self._error or "timed out").strip().splitlines()[-1]
            raise UserError(f"cannot open the preview window ({reason}); name another output "
                            "(a file, udp://..., vcam)")

    @property
    def closed(self) -> bool:
        return self._done.is_set()

    @property
    def skipped(self) -> int:
        """Frames given to :meth:`show` that a newer one replaced before they were drawn."""
        return self._inbox.dropped

    def show(self, frame: Frame) -> int:
        """Queue ``frame`` for display (never blocks); returns a ticket for :meth:`wait_drawn`.
        Re-raises a failure of the GUI thread."""
        if self._error is not None:
            raise RuntimeError(f"preview window failed: {self._error}") from self._error
        with self._drawn:
            self._given += 1
            ticket = self._given
        self._inbox.put((ticket, frame))
        return ticket

    def wait_drawn(self, ticket: int, timeout: float = 0.5) -> bool:
        """Wait until the frame of ``ticket`` (or a newer one) is on screen; False on timeout
        (paused, closed). Lets latency be measured to the screen, not to the window's inbox."""
        with self._drawn:
            return self._drawn.wait_for(lambda: self._drawn_ticket >= ticket or self.closed,
                                        timeout)

    def close(self, timeout: float = 2.0) -> None:
        self.state.quit = True
        self._done.wait(timeout)

    def _hud(self, frame: Frame) -> Hud:
        return Hud(
            fps=self.stats.fps.rate, latency_ms=self.stats.last_latency * 1000,
            dropped=self.stats.dropped, model=self.model, backend=self.backend,
            sigma=frame.sigma, coarse=frame.coarse, strength=self.controls.strength,
            temporal=self.controls.temporal, paused=self.controls.paused,
            tier=self.tier() if self.tier is not None else "",
        )

    def _draw(self) -> None:
        if self._current is None:
            return
        img = self.renderer(self._current, self.state, self._hud(self._current), self.max_size)
        self._width = img.shape[1]
        cv2.imshow(self.title, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if handle_mouse(event, x, self._width, self.state):
            self._draw()  # runs inside waitKey, on the GUI thread

    def _window_gone(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def _run(self) -> None:
        self.gui_thread = threading.current_thread().name
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            cv2.setMouseCallback(self.title, self._on_mouse)
            self._opened.set()
            was_paused = False
            while not (self.state.quit or self.controls.stop.is_set()):
                if self.controls.paused:
                    if not was_paused:
                        self._draw()  # show the PAUSED line once
                        was_paused = True
                    # Sleep inside the GUI event loop: near-zero CPU, still answers keys/mouse.
                    key = cv2.waitKeyEx(200)
                else:
                    was_paused = False
                    ticket = 0
                    try:
                        ticket, self._current = self._inbox.get(timeout=0.01)
                        self._draw()
                        self.shown += 1
                    except queue.Empty:
                        pass
                    key = cv2.waitKeyEx(1)  # also paints what imshow gave
                    if ticket:
                        with self._drawn:
                            self._drawn_ticket = ticket
                            self._drawn.notify_all()
                if handle_key(key, self.state, self.controls):
                    self._draw()
                if self.shown and self._window_gone():  # closed with the title-bar button
                    self.state.quit = True
                    self.controls.stop.set()
        except BaseException as exc:  # handed to the pipeline through show()
            self._error = exc
            self._opened.set()
            self.controls.stop.set()
            log.debug("preview window failed", exc_info=True)
        finally:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._done.set()
            with self._drawn:
                self._drawn.notify_all()


class PreviewSink:
    """The preview window as a pipeline output (the window draws on its own thread)."""

    main_thread = False

    def __init__(self, window: PreviewWindow) -> None:
        self.window = window
        self.description = "preview window"
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        # Waiting for the picture to be on screen makes the latency end-to-end (and a window
        # that draws slowly hold back the path, whose live queue then drops the oldest frame).
        self.window.wait_drawn(self.window.show(frame))
        self.frames_written += 1

    def close(self) -> None:
        self.window.close()


def display_missing(platform: str | None = None, env: dict[str, str] | None = None) -> str:
    """Why no window can open here ("" when one can). Qt aborts the whole process when it
    finds no X or Wayland display, so this is checked before asking it."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    # opencv-python's Qt has only the X11 (xcb) plugin; Wayland desktops provide XWayland.
    if not platform.startswith("linux"):
        return ""
    display = env.get("DISPLAY", "")
    why = "DISPLAY is not set" if not display else (
        "" if _x_server_answers(display) else f"no X server answers at DISPLAY={display}")
    if why:
        return (f"no display for the preview window ({why}); name an output instead "
                "(a file, udp://..., vcam) or run it in a desktop session")
    return ""


def _x_server_answers(display: str, timeout: float = 2.0) -> bool:
    """Whether something listens where ``display`` (``:0``, ``host:10.0``) points."""
    import re
    import socket

    m = re.fullmatch(r"(?:(?:unix)?(?P<host>[^:/]*))?:(?P<num>\d+)(?:\.\d+)?", display)
    if not m:
        return True  # a form we do not know (e.g. a launchd socket path): let Qt decide
    host, num = m.group("host") or "", int(m.group("num"))
    if host and host != "unix":
        try:
            with socket.create_connection((host, 6000 + num), timeout=timeout):
                return True
        except OSError:
            return False
    path = f"/tmp/.X11-unix/X{num}"
    for address in ("\0" + path, path):  # Linux X servers listen on both
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
                return True
            except OSError:
                continue
    return False


def _point_qt_at_fonts() -> None:
    """opencv-python's bundled Qt ships no fonts and warns on every window; lend it the
    system's (only where the user has not chosen)."""
    if "QT_QPA_FONTDIR" in os.environ:
        return
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF",
                   "/usr/share/fonts/dejavu"):
        if os.path.isdir(folder):
            os.environ["QT_QPA_FONTDIR"] = folder
            return


# macOS (Cocoa) allows windows on the main thread only: there the caller runs the window
# loops itself with :func:`serve_gui` (the pipeline then runs on a worker thread). Elsewhere
# one background thread serves them, and the pipeline keeps the main thread.
GUI_ON_MAIN_THREAD = sys.platform == "darwin"
_GUI: queue.Queue | None = None
_GUI_LOCK = threading.Lock()


def _gui_thread() -> queue.Queue:
    """The queue of window loops, and (unless GUI_ON_MAIN_THREAD) the one thread that makes
    every HighGUI call for the life of the process.

    OpenCV's Qt backend binds the GUI to the first thread that opens a window and, from any
    other thread, waits for that one to run the call: a second window from a fresh thread
    would hang once the first thread has ended. So window loops queue up on a single thread.
    """
    global _GUI
    with _GUI_LOCK:
        if _GUI is None:
            _point_qt_at_fonts()
            _GUI = queue.Queue()
            tasks = _GUI

            def serve() -> None:
                while True:
                    tasks.get()()

            if not GUI_ON_MAIN_THREAD:
                threading.Thread(target=serve, name="preview-gui", daemon=True).start()
        return _GUI


def serve_gui(until: threading.Event) -> None:
    """Run queued window loops on the calling thread until ``until`` is set (GUI_ON_MAIN_THREAD
    platforms: call it from the main thread)."""
    tasks = _gui_thread()
    while not until.is_set():
        try:
            task = tasks.get(timeout=0.1)
        except queue.Empty:
            continue
        task()

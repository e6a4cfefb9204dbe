"""Camera source through OpenCV: ``webcam``, ``0``, ``/dev/video0``.

The device is asked for a size and rate (MJPG when a large size is asked for, because raw YUYV
over USB 2 cannot carry it at full rate) and what it granted is reported, since drivers
silently round to the nearest mode they support. Each frame is stamped with
``time.perf_counter()`` right after the grab, so sinks can measure end-to-end latency. When the
camera vanishes (unplugged, taken by another program) the source says so once and retries
every second until it comes back or the pipeline stops.
"""
from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from .base import Source, SourceInfo
from .errors import UserError
from .frame import Frame
from .live import LiveControls

log = logging.getLogger(__name__)

_DEV_RE = re.compile(r"^/dev/video(\d+)$")
# Above this many pixels, ask for MJPG: uncompressed YUYV at 1280x720 tops out near 10 fps on
# USB 2, while MJPG reaches the camera's full rate.
_MJPG_ABOVE = 640 * 480
MS = Fraction(1, 1000)


class CameraError(UserError):
    """The camera cannot be opened (a user-facing, one-line message)."""


def is_camera_spec(spec: str) -> bool:
    """True for ``webcam``, ``webcamN``, a bare device index, or ``/dev/videoN``."""
    return spec == "webcam" or bool(re.fullmatch(r"webcam\d+|\d+", spec) or _DEV_RE.match(spec))


def parse_camera_spec(spec: str) -> int | str:
    """The device index (``webcam`` -> 0, ``2`` -> 2) or the device path."""
    if spec == "webcam":
        return 0
    if m := re.fullmatch(r"webcam(\d+)|(\d+)", spec):
        return int(m.group(1) or m.group(2))
    if _DEV_RE.match(spec):
        return spec
    raise CameraError(f"expected a camera (webcam, 0, /dev/video0), got {spec!r}")


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else "?"


def _open_capture(device: int | str) -> Any:
    """cv2.VideoCapture for a device, quietly (OpenCV logs a page per missing camera)."""
    import cv2

    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(device, api)
    finally:
        cv2.utils.logging.setLogLevel(level)


class CameraSource(Source):
    """Frames from a camera; dropping stale ones is the job of the queue behind it.

    ``frames()`` yields :class:`Frame` objects (RGB) until :meth:`close` is called or
    ``controls.stop`` is set, and waits (without reading) while ``controls`` is paused.
    ``capture_factory`` opens a device and returns an object with the ``cv2.VideoCapture``
    methods used here; tests pass a fake.
    """

    live = True

    def __init__(
        self,
        spec: str | int,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        *,
        controls: LiveControls | None = None,
        retry_s: float = 1.0,
        report: Callable[[str], None] | None = None,
        capture_factory: Callable[[int | str], Any] | None = None,
    ) -> None:
        self.device = parse_camera_spec(spec) if isinstance(spec, str) else spec
        super().__init__(f"camera {self.device}")
        self.requested_size = size
        self.requested_fps = fps
        self.controls = controls or LiveControls()
        self.stop = self.controls.stop
        self.retry_s = retry_s
        self.report = report or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._factory = capture_factory or _open_capture
        self._cap: Any = None
        self.size: tuple[int, int] = (0, 0)
        self.fps: float = 0.0
        self.fourcc = "?"
        self.reconnects = 0
        self._cap = self._connect()
        if self._cap is None:
            where = f"index {self.device}" if isinstance(self.device, int) else self.device
            raise CameraError(
                f"no camera at {where}: it does not exist or cannot be opened (is another "
                "program using it?)")
        self.report(f"camera {self.name}: {self.granted}")
        self.info = SourceInfo(width=self.size[0], height=self.size[1],
                               rate=Fraction(self.fps).limit_denominator(1001), time_base=MS)

    @property
    def name(self) -> str:
        return str(self.device)

    @property
    def granted(self) -> str:
        w, h = self.size
        asked = ""
        if self.requested_size or self.requested_fps:
            rw, rh = self.requested_size or (w, h)
            asked = f" (asked {rw}x{rh} at {self.requested_fps or self.fps:g} fps)"
        fourcc = f", {self.fourcc}" if self.fourcc != "?" else ""
        return f"{w}x{h} at {self.fps:g} fps{fourcc}{asked}"

    def _connect(self) -> Any:
        """Open and configure the device; None when it is not there."""
        import cv2

        cap = self._factory(self.device)
        if cap is None or not cap.isOpened():
            return None
        if self.requested_size:
            w, h = self.requested_size
            if w * h > _MJPG_ABOVE:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if self.requested_fps:
            cap.set(cv2.CAP_PROP_FPS, float(self.requested_fps))
        # Fewer frames waiting in the driver = less latency; not every backend honours it.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        ok, image = cap.read()
        if not ok or image is None:
            cap.release()
            return None
        self.size = (image.shape[1], image.shape[0])
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or float(self.requested_fps or 30.0)
        self.fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        return cap

    def _reconnect(self) -> bool:
        """Retry until the camera is back (True) or the source is stopped (False)."""
        self.report(f"camera {self.name} lost; retrying every {self.retry_s:g} s (Ctrl-C quits)")
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        while not self.stop.wait(self.retry_s):
            self._cap = self._connect()
            if self._cap is not None:
                self.reconnects += 1
                self.report(f"camera {self.name} back: {self.granted}")
                return True
        return False

    def frames(self) -> Iterator[Frame]:
        import cv2

        t0 = time.perf_counter()
        index = 0
        while not self.stop.is_set():
            if self.controls.paused:
                # Nobody looks at frames while paused; reading on would only burn CPU.
                if not self.controls.wait_running():
                    return
                continue
            cap = self._cap
            ok = cap is not None and cap.grab()
            captured = time.perf_counter()
            image = cap.retrieve()[1] if ok else None
            if image is None:
                if self.stop.is_set() or not self._reconnect():
                    return
                continue
            rgb: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            yield Frame(
                image=rgb,
                index=index,
                pts=round((captured - t0) * 1000),
                time_base=MS,
                captured=captured,
                name=self.name,
                sequence=self.reconnects,
            )
            index += 1

    def close(self) -> None:
        self.stop.set()
        if self._cap is not None:
            self._cap.release()
            self._cap = None

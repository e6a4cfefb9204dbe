"""Virtual camera output through pyvirtualcam: ``python -m stream webcam vcam``.

Other programs (OBS, Zoom, a browser) then see the denoised picture as a camera: OBS Virtual
Camera on Windows and macOS, a v4l2loopback device on Linux. ``vcam:/dev/video10`` names the
device. pyvirtualcam is imported only when this output is asked for; when no backend works,
the error is one line that says how to get one.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import numpy as np

from .base import Sink, Source
from .errors import UserError
from .frame import Frame

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0


class VirtualCameraError(UserError):
    """No virtual-camera backend (one line naming the fix)."""


def fix_hint(platform: str | None = None) -> str:
    """How to get a virtual camera on this platform."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return ("load v4l2loopback: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "(package v4l2loopback-dkms)")
    if platform in ("win32", "darwin"):
        return "install OBS Studio 28+ and press 'Start Virtual Camera' once, then retry"
    return "this platform has no virtual camera backend in pyvirtualcam"


def _first_sentence(text: str) -> str:
    text = " ".join(str(text).split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def open_camera(width: int, height: int, fps: float, device: str | None = None) -> Any:
    """A started ``pyvirtualcam.Camera`` taking RGB frames, or VirtualCameraError."""
    try:
        import pyvirtualcam
    except ImportError:
        raise VirtualCameraError(
            "no virtual camera: pyvirtualcam is not installed; fix: "
            "pip install 'denoise-stream[vcam]'") from None
    try:
        return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                   device=device)
    except (RuntimeError, ValueError, OSError) as exc:
        raise VirtualCameraError(
            f"no virtual camera ({_first_sentence(exc)}); fix: {fix_hint()}") from None


class VirtualCameraSink(Sink):
    """Sends each frame to a virtual camera of a fixed size (frames of another size are
    resized: consumers such as OBS cannot follow a size change mid-stream)."""

    def __init__(self, width: int, height: int, fps: float = DEFAULT_FPS,
                 device: str | None = None, camera: Any = None) -> None:
        super().__init__(f"virtual camera {device or ''}".strip())
        if width <= 0 or height <= 0:
            raise ValueError(f"expected a positive size, got {width}x{height}")
        self.size = (width, height)
        self.fps = fps
        self.cam = camera if camera is not None else open_camera(width, height, fps, device)
        self.device = getattr(self.cam, "device", device)
        log.info("virtual camera %s: %dx%d at %g fps", self.device, width, height, fps)

    def write(self, frame: Frame) -> None:
        image: np.ndarray = frame.image
        if (image.shape[1], image.shape[0]) != self.size:
            import cv2

            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.cam.send(np.ascontiguousarray(image))
        self.frames_written += 1

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None


def is_vcam_spec(spec: str) -> bool:
    return spec == "vcam" or spec.startswith("vcam:")


def open_vcam_sink(spec: str, source: Source | None) -> Sink | None:
    """The sink for ``vcam`` / ``vcam:DEVICE`` (``stream.openers`` decides when it applies)."""
    if not is_vcam_spec(spec):
        return None
    device = spec.partition(":")[2] or None
    info = source.info if source is not None else None
    width, height = (info.width, info.height) if info is not None else (None, None)
    if not width or not height:
        raise UserError("vcam: the input's picture size is unknown; pass --size WxH")
    rate = float(info.rate) if info is not None and info.rate else DEFAULT_FPS
    return VirtualCameraSink(width, height, rate, device)

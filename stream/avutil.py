"""Small PyAV helpers shared by the file source and sinks: colour conversion and error text."""
from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

# The colourspaces swscale can convert between; anything else (e.g. "unspecified") uses
# its BT.601 default, the same way on decode and encode, so a round trip stays consistent.
_SWS_SPACES = {1, 4, 5, 7, 9}
_JPEG_RANGE = 2


@dataclass
class ColorInfo:
    """The colour description of a video stream (FFmpeg enum values; 2 = unspecified)."""

    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColorInfo:
        return cls(int(frame.color_range), int(frame.colorspace),
                   int(frame.color_primaries), int(frame.color_trc))

    @property
    def full_range(self) -> bool:
        return self.color_range == _JPEG_RANGE

    def sws_kwargs(self, *, encode: bool) -> dict[str, int]:
        """Keyword arguments for ``VideoFrame.reformat`` to/from RGB with these colours."""
        kw: dict[str, int] = {}
        space = self.colorspace if self.colorspace in _SWS_SPACES else None
        rng = _JPEG_RANGE if self.full_range else 1
        if encode:
            kw["dst_color_range"] = rng
            if space is not None:
                kw["dst_colorspace"] = space
        else:
            kw["src_color_range"] = rng
            if space is not None:
                kw["src_colorspace"] = space
        return kw


def frame_to_rgb(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """Decoded frame -> (H, W, 3) uint8 RGB, honouring its range and matrix."""
    if frame.format.name in ("rgb24",):
        return frame.to_ndarray()
    if frame.format.name.startswith(("yuv", "nv", "p0", "y2", "uyvy", "yuyv")):
        return frame.to_ndarray(format="rgb24", **color.sws_kwargs(encode=False))
    return frame.to_ndarray(format="rgb24")


def rgb_to_frame(image: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB -> a frame in the encoder's pixel format, tagged with the colours."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    if pix_fmt == "rgb24":
        return frame
    if pix_fmt.startswith(("yuv", "nv")):
        out = frame.reformat(format=pix_fmt, **color.sws_kwargs(encode=True))
        out.color_range = _JPEG_RANGE if color.full_range else 1
        if color.colorspace in _SWS_SPACES:
            out.colorspace = color.colorspace
        out.color_primaries = color.color_primaries
        out.color_trc = color.color_trc
        return out
    return frame.reformat(format=pix_fmt)


def av_message(exc: BaseException) -> str:
    """A short one-line description of a PyAV/OS error."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())

"""Encoder pixel formats: which one a video output gets (the input's chroma layout and bit
depth kept where the codec takes them), checks made before anything is written, and 16-bit
RGB to a frame of more than 8 bits."""
from __future__ import annotations

import av
import numpy as np

from .avutil import ColorInfo
from .errors import UserError


def check_encoder_options(codec: av.Codec, crf: int | None, pix_fmt: str | None) -> None:
    """Refuse what the encoder would refuse at the first frame, before anything is written."""
    if crf is not None and codec.name in ("libx264", "libx265") and not 0 <= crf <= 51:
        raise UserError(f"--crf: {codec.name} takes 0..51, got {crf}")
    if pix_fmt:
        formats = [f.name for f in (codec.video_formats or [])]
        if formats and pix_fmt not in formats:
            raise UserError(f"--pix-fmt: codec {codec.name} cannot encode {pix_fmt}; it takes "
                            f"{', '.join(formats)}")


# 8-bit chroma layouts kept from the input when the codec takes them (4:2:0 is the default)
KEPT_LAYOUTS = {"yuv444p": "yuv444p", "yuvj444p": "yuv444p", "yuv422p": "yuv422p",
                "yuvj422p": "yuv422p"}


# Formats of more than 8 bits, in the order tried when the codec cannot take the input's own
HI_FORMATS = ("yuv420p10le", "yuv444p10le", "yuv422p10le", "gbrp10le", "gbrp16le",
              "yuv420p16le", "yuv444p16le")


def format_bits(name: str) -> int:
    try:
        return max((c.bits for c in av.VideoFormat(name).components), default=8)
    except (ValueError, av.error.FFmpegError):
        return 8


def hi_pix_fmt(codec: av.Codec, source_fmt: str | None, odd: bool = False) -> str | None:
    """The encoder format for an input of more than 8 bits: the input's own when the codec
    takes it, else the first of HI_FORMATS it takes; None when it takes none (8-bit out).
    Odd sizes get a format without chroma subsampling."""
    formats = [f.name for f in (codec.video_formats or [])]
    if odd:
        formats = [f for f in formats if f.startswith(("yuv444", "gbr"))]
    if source_fmt in formats and format_bits(source_fmt) > 8:
        return source_fmt
    return next((f for f in HI_FORMATS if f in formats), None)


def rgb48_to_frame(image: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """(H, W, 3) uint16 RGB -> a frame in the encoder's (more than 8-bit) format."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb48le")
    if not pix_fmt.startswith("yuv"):
        return frame.reformat(format=pix_fmt)
    out = frame.reformat(format=pix_fmt, **color.sws_kwargs(encode=True))
    out.color_range = 2 if color.full_range else 1
    if color.colorspace in (1, 4, 5, 7, 9):
        out.colorspace = color.colorspace
    out.color_primaries = color.color_primaries
    out.color_trc = color.color_trc
    return out


def choose_pix_fmt(codec: av.Codec, width: int, height: int, wanted: str | None,
                   source_fmt: str | None = None) -> str:
    formats = [f.name for f in (codec.video_formats or [])]
    if not wanted and source_fmt in KEPT_LAYOUTS and KEPT_LAYOUTS[source_fmt] in formats \
            and codec.name != "ffv1" and not (width % 2 and KEPT_LAYOUTS[source_fmt] != "yuv444p"):
        return KEPT_LAYOUTS[source_fmt]
    if wanted:
        if formats and wanted not in formats:
            raise UserError(f"codec {codec.name} cannot encode {wanted}; it takes "
                            f"{', '.join(formats)}")
        return wanted
    if codec.name == "ffv1":
        return "bgr0"  # lossless means lossless: no RGB->YUV rounding
    odd = width % 2 or height % 2
    prefs = ["yuv444p", "gbrp", "rgb24"] if odd else ["yuv420p", "yuv444p", "gbrp"]
    for fmt in prefs:
        if fmt in formats:
            return fmt
    return formats[0] if formats else "yuv420p"

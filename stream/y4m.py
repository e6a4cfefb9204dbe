"""Y4M (YUV4MPEG2) on stdin: the stream header is read and checked here before FFmpeg sees it,
so a wrong input gets a message in the user's terms (FFmpeg's own is "Invalid argument" for
random bytes and "Device or resource busy" for a damaged header).
"""
from __future__ import annotations

import io
import re
from typing import BinaryIO

from .errors import UserError

SIGNATURE = b"YUV4MPEG2"
MAX_HEADER = 4096  # a real header is about 60 bytes; the parameters are a handful of words
EXAMPLE = "e.g. ffmpeg -i in.mkv -f yuv4mpegpipe - | python -m stream - out.mp4"


def check_header(line: bytes, what: str = "stdin") -> None:
    """Raise UserError saying what is wrong with a Y4M stream header line (ending in \\n)."""
    if not line:
        raise UserError(f"{what} is empty: expected a Y4M stream ({EXAMPLE})")
    if not line.startswith(SIGNATURE):
        raise UserError(f"{what} is not a Y4M stream (it starts with {line[:12]!r}, not "
                        f"'YUV4MPEG2'); {EXAMPLE}")
    if line[len(SIGNATURE):len(SIGNATURE) + 1] not in (b" ", b"\n", b""):
        raise UserError(f"{what}: the Y4M header starts with {line[:12]!r}; expected "
                        "'YUV4MPEG2 ' and its parameters")
    if not line.endswith(b"\n"):
        if len(line) >= MAX_HEADER:
            raise UserError(f"{what}: the Y4M header has no end of line in its first "
                            f"{MAX_HEADER} bytes")
        raise UserError(f"{what}: the Y4M header is cut short ({len(line)} bytes, no end of "
                        "line)")
    try:
        words = line[len(SIGNATURE):].decode("ascii").split()
    except UnicodeDecodeError:
        raise UserError(f"{what}: the Y4M header holds bytes that are not text") from None
    params = {w[0]: w[1:] for w in words}
    for key in ("W", "H"):
        value = params.get(key)
        if value is None:
            raise UserError(f"{what}: the Y4M header gives no picture "
                            f"{'width' if key == 'W' else 'height'} ({key})")
        if not re.fullmatch(r"[0-9]{1,6}", value) or int(value) <= 0:
            raise UserError(f"{what}: the Y4M header's picture size {key}{value} is not a "
                            "positive whole number")
    rate = params.get("F")
    if rate is not None:
        m = re.fullmatch(r"([0-9]{1,9}):([0-9]{1,9})", rate)
        if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
            raise UserError(f"{what}: the Y4M header's frame rate F{rate} is not N:D with "
                            "positive whole numbers")


class PrefixedReader(io.RawIOBase):
    """``prefix`` (bytes already read) followed by the rest of ``rest``: what FFmpeg reads."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.header = prefix
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        if self._prefix:
            take = self._prefix[:n]
            self._prefix = self._prefix[len(take):]
            buffer[:len(take)] = take
            return len(take)
        read1 = getattr(self._rest, "read1", None)
        data = read1(n) if read1 is not None else self._rest.read(n)
        buffer[:len(data)] = data
        return len(data)


def open_checked(stream: BinaryIO, what: str = "stdin") -> BinaryIO:
    """Read and check the header of a Y4M stream; a reader that still yields all of it."""
    readline = getattr(stream, "readline", None)
    line = readline(MAX_HEADER) if readline is not None else stream.read(MAX_HEADER)
    check_header(line, what)
    return PrefixedReader(line, stream)  # type: ignore[return-value]

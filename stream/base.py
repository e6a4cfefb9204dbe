"""What every source and sink is: the two small interfaces the frame path joins.

A source has ``frames()`` (an iterator run on the reader thread) and ``close()``; a sink has
``write(frame)`` and ``close()``.  ``stream.openers`` picks the concrete kind for a spec.
"""
from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .avutil import ColorInfo
from .frame import Frame


@dataclass
class SourceInfo:
    """What sinks need to know before the first frame (all optional: live sources lack some)."""

    width: int | None = None
    height: int | None = None
    rate: Fraction | None = None  # nominal frames per second
    time_base: Fraction | None = None
    frames: int | None = None  # expected frame count, when the container says
    rotation: int = 0  # display rotation, degrees counter-clockwise
    color: ColorInfo = field(default_factory=ColorInfo)
    copy_streams: list[Any] = field(default_factory=list)  # input av streams to copy as-is
    grey: bool = False  # a video of one channel: sinks write it back as grey (see avsink)
    pix_fmt: str | None = None  # the decoded frames' format, e.g. yuv444p (kept where it can be)
    bits: int = 8  # bits per component; above 8, see Source.hi_frames


class Source:
    """Base class.  ``live`` sources get the drop-oldest queue policy (see pipeline.py)."""

    live: bool = False
    is_video: bool = True  # False for an image or a folder of images

    def __init__(self, description: str) -> None:
        self.description = description
        self.info = SourceInfo()
        self.warnings: list[str] = []
        # Packets of copied streams (audio...): the reader thread appends each, in demux order,
        # to every queue handed out by add_side_reader() (one per file sink); bounded because
        # the reader blocks on the frame queue, and nothing is kept when no sink asked.
        self._side_readers: list[collections.deque[Any]] = []
        self.finished = False  # set when the input was read to its end
        self.frames_read = 0  # frames yielded so far
        # Inputs of more than 8 bits: frame index -> (H, W, 3) uint16 RGB of the frames in
        # flight.  The denoiser works on 8 bits (Frame.image); a sink that can write more adds
        # the change it made to this picture (avsink), so the input's finer levels survive.
        self.hi_frames: dict[int, np.ndarray] = {}

    def _keep_hi(self, index: int, hi: np.ndarray) -> None:
        self.hi_frames[index] = hi
        for old in [i for i in self.hi_frames if i < index - 64]:  # the queues hold ~10
            del self.hi_frames[old]

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def add_side_reader(self) -> collections.deque[Any]:
        """A queue that will receive the copied streams' packets (a wrapper holding the real
        source as ``inner`` hands out the inner source's)."""
        inner = getattr(self, "inner", None)
        if isinstance(inner, Source):
            return inner.add_side_reader()
        queue: collections.deque[Any] = collections.deque()
        self._side_readers.append(queue)
        return queue

    def _push_side(self, packet: Any) -> None:
        for i, queue in enumerate(self._side_readers):
            queue.append(packet if i == 0 else _clone_packet(packet))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class Sink:
    main_thread: bool = False

    def __init__(self, description: str) -> None:
        self.description = description
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


def _clone_packet(packet: Any) -> Any:
    """A copy for a second sink: muxing consumes a packet's data."""
    copy = av.Packet(bytes(packet))
    copy.stream = packet.stream
    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy

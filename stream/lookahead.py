"""A file job's processing stage that looks ahead: each frame is denoised once the frames after
it have arrived, so ``--temporal auto`` can average it with the frames on both sides
(``models.window_average``).

``LookAhead(processor, radius)`` is what the pipeline calls instead of the processor: it takes
one frame and returns the frames now denoised (none while the first ``radius`` are read, then
one a frame, in order), and ``drain()`` denoises the ones still waiting (the pipeline calls it
at the end of the input, and when a run is interrupted: every frame read is written).  A new
sequence (another input, a size change) finishes the last one first, so no window spans two.
Only where there is no pace to keep: a live run (camera, ``--realtime``, the window) stays
causal (``stream.session.lookahead_for``).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from models.window_average import PAST

from .frame import Frame


class Window(NamedTuple):
    """The noisy frames around a frame, nearest first; those up to ``warp`` frames away are
    also tried warped along the flow (``models.window_average``)."""

    before: list[np.ndarray]
    after: list[np.ndarray]
    warp: int


class LookAhead:
    """Frame -> list of denoised Frames, ``radius`` frames behind; ``drain()`` the rest."""

    def __init__(self, processor: Any, radius: int) -> None:
        if radius < 1:
            raise ValueError(f"expected a look-ahead of 1 frame or more, got {radius}")
        self.processor = processor
        self.radius = radius
        # inputs already denoised, newest last: past ``radius`` a still camera's are averaged
        # in as they are (``models.window_average.PAST``)
        self._past: deque[np.ndarray] = deque(maxlen=max(radius, PAST))
        self._waiting: deque[Frame] = deque()  # read, not yet denoised, oldest first

    def __call__(self, frame: Frame) -> list[Frame]:
        out: list[Frame] = []
        if self._waiting and (frame.sequence != self._waiting[-1].sequence
                              or frame.image.shape != self._waiting[-1].image.shape):
            out = self.flush()
        self._waiting.append(frame)
        if len(self._waiting) > self.radius:
            out.append(self._next())
        return out

    def drain(self) -> Iterator[Frame]:
        """Denoise the frames still waiting (each with the frames after it that there are),
        one at a time, then start afresh (the pipeline calls it at the end of the input)."""
        while self._waiting:
            yield self._next()
        self._past.clear()

    def flush(self) -> list[Frame]:
        """``drain`` as a list."""
        return list(self.drain())

    def _next(self) -> Frame:
        """Denoise the oldest waiting frame; it leaves the queue only once denoised (an
        interruption inside leaves it for ``drain``)."""
        frame = self._waiting[0]
        after = [f.image for f in list(self._waiting)[1:self.radius + 1]]
        before = list(reversed(self._past))
        result = self.processor(frame, Window(before, after, self.radius))
        self._waiting.popleft()
        self._past.append(frame.image)
        return result

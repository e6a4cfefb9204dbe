"""The unit that travels along the pipeline: one RGB picture plus its timing."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    """One decoded picture.

    ``image`` is (H, W, 3) uint8 RGB, C-contiguous.  ``pts``/``time_base`` are the source's
    presentation timestamp (None for sources without one).  ``captured`` is the monotonic
    time (``time.perf_counter()``) at which the frame entered the pipeline, so sinks can
    measure end-to-end latency.  ``index`` counts frames from 0 within one input; ``name``
    is the file name for image/folder sources.  ``sequence`` changes when temporal state
    must not carry over (a new input, a size change).
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    captured: float = field(default_factory=time.perf_counter)
    name: str | None = None
    sequence: int = 0
    # Filled by the processor: the noise level used (0..255 units) and, on request, the
    # noisy input kept for the before/after and removed-noise views; how the engine ran on
    # it for coarse noise (``engines.phase_split``: off or blend).
    sigma: float | None = None
    original: np.ndarray | None = None
    coarse: str = "off"

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or None."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

"""Large pictures in overlapping tiles, so a network's memory follows the tile, not the picture.

A 48-megapixel phone photo through ``fast`` on ONNX Runtime peaked at 7.8 GB of memory (5.6 GB
of it the network's own activations); in tiles of ``CORE`` pixels a side, each read with
``MARGIN`` pixels of the picture around it and only its core kept, the network sees one tile at
a time; the output is the whole frame's (``fast`` and ``base`` on a 12-megapixel photo: the
same to the bit).  Frames up to 4K (``ABOVE``) run whole, as before.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

ABOVE = 3840 * 2160  # pixels: a larger frame runs in tiles
CORE = 2048  # a tile's kept part, pixels a side
MARGIN = 64  # the picture read around it on each side (past the networks' reach, see tests)
# tiles start on multiples of this: the networks' cells (4 x 4 pixels, halved again in their
# deeper levels) then fall where the whole frame's do; from row 824 instead, ``fast``'s output
# differed by up to 12 levels over the whole tile
ALIGN = 64


def spans(n: int, core: int | None = None, margin: int | None = None) -> list[tuple[int, int, int, int]]:
    """Along one side of ``n`` pixels: (read from, read to, keep from, keep to) per tile, each
    read up to ``core + 2 margin`` long from a multiple of ``ALIGN``, the kept parts tiling
    ``n`` exactly (``core``, ``margin``: ``CORE``, ``MARGIN`` unless given)."""
    core = CORE if core is None else core
    margin = MARGIN if margin is None else margin
    size = core + 2 * margin
    if n <= size:
        return [(0, n, 0, n)]
    out = []
    for keep in range(0, n, core):
        start = max(keep - margin, 0) // ALIGN * ALIGN
        out.append((start, min(start + size, n), keep, min(keep + core, n)))
    return out


def needed(shape: tuple[int, ...]) -> bool:
    """Whether a (B, H, W, 3) batch runs in tiles."""
    return shape[1] * shape[2] > ABOVE


def run(infer: Callable[[np.ndarray, np.ndarray], np.ndarray], frames: np.ndarray,
        sigma: np.ndarray) -> np.ndarray:
    """``infer(frames, sigma)`` tile by tile: ``frames`` (B, H, W, 3), ``sigma`` (B,) or
    (B, H, W) (cut with its tile)."""
    out = np.empty_like(frames, dtype=np.uint8)
    for y0, y1, ky0, ky1 in spans(frames.shape[1]):
        for x0, x1, kx0, kx1 in spans(frames.shape[2]):
            sig = sigma if sigma.ndim == 1 else np.ascontiguousarray(sigma[:, y0:y1, x0:x1])
            part = infer(np.ascontiguousarray(frames[:, y0:y1, x0:x1]), sig)
            out[:, ky0:ky1, kx0:kx1] = part[:, ky0 - y0:ky1 - y0, kx0 - x0:kx1 - x0]
    return out

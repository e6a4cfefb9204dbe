"""The previous output warped onto the new frame, for a recurrent model trained that way.

``FlowAligner`` reads dense optical flow (OpenCV DIS, ultrafast preset) from each noisy
frame's grey cells (``still_camera.cell_scale`` pixels a side, as the ``auto`` smoothing reads
them) to the last frame's, and warps the previous output along it (bilinear, edges
replicated).  The same code makes the training sequences' maps (``models.lab.train_temporal``)
and runs in the processor, so the network learns the flow's errors as the product makes them.
"""
from __future__ import annotations

import cv2
import numpy as np

from .still_camera import cell_flow, cell_scale, grey_cells, pixel_grid


class FlowAligner:
    """``warped = aligner(noisy, prev)``: ``prev`` (the output for the frame before, (H, W, 3))
    warped onto ``noisy`` (the new noisy frame, (H, W, 3) uint8); None when there is no frame
    before of this size.  Call it on every frame of a sequence (it keeps the last frame's grey
    cells), with ``prev=None`` where the model gets no previous output; ``reset`` between
    sequences."""

    def __init__(self) -> None:
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.reset()

    def reset(self) -> None:
        self.last: np.ndarray | None = None

    def where(self, noisy: np.ndarray, needed: bool = True) -> np.ndarray | None:
        """Per pixel of ``noisy``, where it was in the frame before ((H, W, 2) float32 x, y
        pixel coordinates, a ``cv2.remap`` map); None at the first frame or a size change, or
        when not ``needed`` (the frame's cells are kept for the next one all the same)."""
        h, w = noisy.shape[:2]
        k = cell_scale(h, w)
        grey = grey_cells(noisy, k)
        last, self.last = self.last, grey
        if last is None or last.shape != grey.shape or not needed:
            return None
        if min(grey.shape) < 16:  # too small for the flow's patches: read as still
            return pixel_grid(h, w).copy()
        flow = cell_flow(self._flow, grey, last)  # new(x) ~ last(x + flow(x)), in cells
        full = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        full *= k
        full += pixel_grid(h, w)
        return full

    def __call__(self, noisy: np.ndarray, prev: np.ndarray | None) -> np.ndarray | None:
        where = self.where(noisy, needed=prev is not None)
        if prev is None or where is None or prev.shape[:2] != noisy.shape[:2]:
            return None
        return cv2.remap(prev, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def sequence_grids(noisy: np.ndarray) -> np.ndarray:
    """For training: ``noisy`` (B, T, H, W, 3) uint8 -> (B, T, H, W, 2) float32 sampling grids
    in ``F.grid_sample``'s units (align_corners=False) that warp frame t-1 onto frame t as
    ``FlowAligner`` does (frame 0: the identity)."""
    b, t, h, w, _ = noisy.shape
    aligner = FlowAligner()
    grids = np.empty((b, t, h, w, 2), np.float32)
    scale = np.array([2 / w, 2 / h], np.float32)
    for i in range(b):
        aligner.reset()
        for j in range(t):
            where = aligner.where(noisy[i, j])
            if where is None:
                where = pixel_grid(h, w)
            grids[i, j] = (where + 0.5) * scale - 1
    return grids

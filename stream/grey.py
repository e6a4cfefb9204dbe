"""Grey pictures: one channel of noise carried in three equal channels.

A night-mode webcam or surveillance camera (infrared, no colour), a black-and-white film or a
one-channel image reaches the network as three equal channels, so its noise is the same in all
three.  The networks and the Wiener pass are made for noise that is independent across the
channels: told a level sigma, they expect the picture's brightness ((R + G + B) / sqrt(3), the
orthonormal opponent space the Wiener pass works in) to carry noise of sigma, where three equal
channels carry sqrt(3) sigma there.  So a grey frame's network and Wiener pass are told
``GAIN`` times its level (the carphone clip in grey with white noise of 20, ``fast`` told the
level, ``--temporal off``: 26.78 dB told 20, 30.08 told 34.6).  The learned reading, made for
colour noise, also reads such noise low (14.8 to 16.9 for 20 on ``bus`` and ``carphone``);
the PCA reading reads it right (17.7 to 19.6), so a grey frame is read by PCA (``reading``;
the higher of the two read a clean grey photo's texture as noise: 40.8 dB with auto against
48.9).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

GAIN = math.sqrt(3.0)
# levels: channels no further apart than this everywhere are one grey picture (a camera's
# chroma rounding around neutral; colour noise of even 1 level puts some pixels past it)
TOLERANCE = 2


def is_grey(image: np.ndarray) -> bool:
    """``image``, uint8 (H, W) or (H, W, 3), has its three channels equal within
    ``TOLERANCE`` everywhere; a sparse look first, so a colour frame costs next to nothing."""
    if image.ndim == 2:
        return True
    sparse = image[::16, ::16].astype(np.int32)
    if np.abs(sparse[..., 0] - sparse[..., 1]).max(initial=0) > TOLERANCE \
            or np.abs(sparse[..., 1] - sparse[..., 2]).max(initial=0) > TOLERANCE:
        return False
    r, g, b = cv2.split(image)
    far = cv2.max(cv2.absdiff(r, g), cv2.absdiff(g, b))
    return cv2.minMaxLoc(far)[1] <= TOLERANCE


def reading(estimator: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
    """``estimator`` for colour frames; for a grey one the PCA reading
    (``models.estimate.coarseness_and_level``, which reads equal channels' noise right),
    ``estimator`` only where the frame is too small for it."""
    def read(image: np.ndarray) -> float:
        if is_grey(image):
            from models.estimate import coarseness_and_level

            pca = coarseness_and_level(image)[1]
            if math.isfinite(pca):
                return pca
        return float(estimator(image))

    return read

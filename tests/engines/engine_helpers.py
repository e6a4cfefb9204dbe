"""Helpers for the engine tests (a module name unique in the test tree: tests import it
by name, as tests/stream imports the top-level conftest)."""
from __future__ import annotations

import numpy as np
import torch


def random_net(model: str, seed: int = 0) -> torch.nn.Module:
    """A seeded random-weight network: the comparisons between backends then do not depend
    on what the shipped weights learnt (a near-identity model would hide layout bugs)."""
    from models import create_model

    torch.manual_seed(seed)
    return create_model(model, pretrained=False)


def frames(b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Noisy smooth frames (B, H, W, 3) uint8."""
    from engines.validate import synthetic_image

    return np.stack([(synthetic_image(h, w, seed + i) * 255).round().astype(np.uint8) for i in range(b)])

"""A calibration's held-out check: the tuned model against the original on samples the tune
never saw, through the product's processing, so that a profile which does not help is not
applied.

``split`` holds out every ``HOLD_EVERY``-th sample (a pair is a scene of its own, a clip's
frame one of a still segment); ``check`` runs each model through ``stream.processor.Processor``
as a file job runs it (the blind noise reading, ``--coarse-noise auto``'s blend with its
helper, the Wiener pass), each sample a shot of its own, and scores it against the sample's
reference.  Through the product matters: the blend and the pass lift the original model more
than a tuned one (README, "Calibrate to your camera"), so a comparison of the networks alone
favours the tune.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

    from models.calibrate_tune import Prepared

T = TypeVar("T")
HOLD_EVERY = 4  # every 4th sample, from the 3rd, is held out (none under 3 samples)
CHECKED = 8  # at most this many of them are run, spread over the held-out ones (a 20 s clip
# holds out about 120 frames, and each costs a file job's frame twice)


def split(items: list[T]) -> tuple[list[T], list[T]]:
    """(tuned on, held out)."""
    if len(items) < 3:
        return list(items), []
    return ([it for i, it in enumerate(items) if i % HOLD_EVERY != 2],
            [it for i, it in enumerate(items) if i % HOLD_EVERY == 2])


def _u8(t: torch.Tensor) -> np.ndarray:
    return t.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy()


def check(model: str, nets: dict[str, torch.nn.Module], items: list[Prepared]) -> dict[str, float]:
    """``check_NAME``: the mean PSNR (dB) of each net on (up to ``CHECKED`` of) ``items``
    through the processor; ``check_samples``: how many; {} without items."""
    if not items:
        return {}
    items = items[::-(-len(items) // CHECKED)]
    from engines.torch_backend import TorchEngine
    from models.metrics import psnr

    from .frame import Frame
    from .options import DenoiseOptions
    from .processor import Processor
    from .session import coarse_helper

    helper = coarse_helper(DenoiseOptions(model=model, backend="torch", device="cpu"))
    scores: dict[str, float] = {}
    for name, net in nets.items():
        engine = TorchEngine(model, net=net, threads=1)
        processor = Processor(engine, coarse="auto", coarse_helper=helper, wiener=True)
        try:
            psnrs = []
            for i, it in enumerate(items):  # each its own shot
                out = processor(Frame(image=_u8(it.noisy), index=i, pts=None, sequence=i)).image
                ref = _u8(it.reference)
                keep = it.mask if it.mask is not None else slice(None)  # a clip's still pixels
                psnrs.append(psnr(out[keep], ref[keep], peak=255.0))
        finally:
            processor.close()
            engine.close()
        scores[f"check_{name}"] = round(float(np.mean(psnrs)), 3)
    return {**scores, "check_samples": float(len(items))}

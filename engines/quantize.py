"""fp32 ONNX graph -> int8 graph for ONNX Runtime on a CPU (static quantization, per channel).

ONNX Runtime's static quantization (QDQ format: int8 weights per output channel, uint8
activations with ranges read from calibration frames) turns the inner convolutions into
integer ones.  Two kinds stay in float because rounding them to 8 bits costs picture:

- the stem, the convolutions that read the frame and the noise map (the input's fine levels
  and a noise level of a few 8-bit steps are what a denoiser must not round away);
- the tail, the last convolution, whose output is the picture itself (uint8 steps there cost
  `tiny` about 1 dB on CBSD68 at sigma 15).

Calibration frames: the bundled sample clip (package data of ``stream``, read as a file, not
imported), a few frames with seeded white noise at several levels (light to heavy; not clean,
see ``CALIBRATION_SIGMAS``); a recurrent model is given the frame as its previous output, as
at a sequence's start.  The result is deterministic for a given fp32 graph.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger("engines.quantize")

CALIBRATION_SIGMAS = (5.0, 15.0, 30.0)  # with 0 (clean) among them, the ranges widen so far that
# `tiny` lost 1.5 dB at sigma 15; light noise still reads well (CBSD68 sigma 5: -0.1 dB)
CALIBRATION_FRAMES = 6


def recipe() -> str:
    """What decides the int8 graph besides the fp32 one (part of its cache key)."""
    return f"static QDQ per-channel u8/s8 MinMax; sigmas {CALIBRATION_SIGMAS}; {CALIBRATION_FRAMES} frames of the sample"


def sample_clip() -> Path:
    return Path(str(resources.files("stream") / "samples" / "sample.mp4"))


def calibration_frames(count: int = CALIBRATION_FRAMES) -> list[np.ndarray]:
    """``count`` RGB uint8 frames spread over the bundled sample."""
    import av

    with av.open(str(sample_clip())) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"no video frames in {sample_clip()}")
    pick = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return [frames[i] for i in pick]


def calibration_feeds(frames: list[np.ndarray], multiple: int,
                      temporal: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Inputs as the engine feeds them: (1, 3, H, W) in 0..1 from 8-bit noisy frames (cropped to
    the graph's multiple) and the noise map of the level added (and ``prev``: the frame)."""
    rng = np.random.default_rng(0)
    for img in frames:
        h, w = img.shape[0] // multiple * multiple, img.shape[1] // multiple * multiple
        clean = img[:h, :w].astype(np.float32)
        for sigma in CALIBRATION_SIGMAS:
            noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255) / 255
            x = noisy.transpose(2, 0, 1)[None].astype(np.float32)
            feed = {"x": x, "sigma": np.full((1, 1, h, w), sigma / 255, np.float32)}
            yield {**feed, "prev": x} if temporal else feed


def float_convs(model: object) -> list[str]:
    """Names of the convolutions kept in float: those reading a graph input (the stem: frame,
    noise map, previous output) and those whose output reaches the graph's output through no
    other convolution (the tail: one conv and pixel-shuffle, or the transposed convs that
    write the picture and the weight on the frame)."""
    graph = model.graph  # type: ignore[attr-defined]
    inputs = {i.name for i in graph.input}
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    keep = [n.name for n in convs if inputs & set(n.input)]
    producer = {o: n for n in graph.node for o in n.output}
    todo, seen = [o.name for o in graph.output], set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("Conv", "ConvTranspose"):
            if node.name not in keep:
                keep.append(node.name)
        else:
            todo.extend(node.input)
    return keep


def quantize_onnx(src: Path, out: Path, multiple: int, temporal: bool = False) -> Path:
    """Write the int8 graph of the fp32 graph ``src`` to ``out``; returns ``out``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = list(calibration_feeds(calibration_frames(), multiple, temporal))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        keep = float_convs(onnx.load(str(pre)))
        staged = Path(tmp) / "int8.onnx"
        # reduce_range: weights in 7 bits.  On x86 CPUs without VNNI (AVX2 only, as the AMD
        # EPYC this was measured on) uint8 x int8 products are summed in pairs into int16 and
        # saturate with 8-bit weights: int8 `fast-temporal` lost 0.5 dB against fp32 there
        # (tests/engines/test_int8.py), and nothing with 7 bits
        quantize_static(
            str(pre), str(staged), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "ConvTranspose"], nodes_to_exclude=keep, reduce_range=True,
        )
        os.replace(staged, out)  # whole or not at all: another process may read the cache
    log.info("quantized %s to int8 (%d calibration inputs; float: %s)", src.name, len(feeds), ", ".join(keep))
    return out

"""The processing stage: noise level (fixed or estimated) -> denoiser engine -> temporal stage.

``Processor`` is a callable Frame -> Frame run by the pipeline on the calling thread.

Temporal hook: ``temporal`` is a factory returning a fresh ``Callable[[Frame], Frame]``; the
processor calls it again whenever ``frame.sequence`` changes (new input, size change) and at a
scene cut (``stream.scenecut``: a new shot in a video, a new photo in a folder), so no state
crosses between sequences: the auto noise level is estimated afresh there too.  The stage
receives the denoised frame with ``original`` (the noisy input) and ``sigma`` (the noise level
given to the model) filled in.
``load_temporal(mode, device)`` finds the factory in ``stream.temporal.create_stage``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from models.window_average import same_frame

from . import grey
from .errors import UserError
from .frame import Frame
from .scenecut import SceneCuts

if TYPE_CHECKING:
    from models.align import FlowAligner

    from .lookahead import Window

log = logging.getLogger(__name__)

TemporalStage = Callable[[Frame], Frame]
TEMPORAL_MODES = ("off", "auto", "light", "strong")
# Smoothing modes that ``stream.temporal.plan`` may choose for ``--temporal auto`` (not asked
# for by name): ``switch`` is the ``auto`` smoothing after a recurrent twin that is fed its
# previous output only while the camera moves.
PLANNED_MODES = ("switch",)
# ``--coarse-noise auto``: a shot's coarseness is the median of its first frames' readings.
COARSE_FIRST = 3


def default_estimator(model: str | None = None) -> Callable[[np.ndarray], float]:
    """The product's noise estimate for ``model``: the reading that model was trained to
    expect (``models.estimate.estimator_for``: the learned estimator for a model trained on
    its noise mix, the PCA reading otherwise)."""
    from models.estimate import estimator_for

    return estimator_for(model)


def _aligner_for(model: str | None) -> FlowAligner | None:
    """A ``models.align.FlowAligner`` for a recurrent model trained on its previous output
    warped along the flow; None for any other (or an unknown name: a test's stand-in)."""
    import models

    try:
        spec = models.get_spec(model) if model else None
    except models.UnknownModelError:
        return None
    if spec is None or not spec.aligned:
        return None
    from models.align import FlowAligner

    return FlowAligner()


def load_temporal(mode: str, device: str = "cpu",
                  window: bool = False) -> Callable[[], TemporalStage] | None:
    """The factory for ``--temporal MODE`` (None for ``off``); ``device``: where the smoothing
    runs (``stream.session`` passes the engine's); ``window``: a file job looking ahead
    (``stream.lookahead``), where ``auto`` averages each input with the frames around it."""
    if mode not in TEMPORAL_MODES + PLANNED_MODES:
        raise UserError(f"--temporal: expected one of {', '.join(TEMPORAL_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    from . import temporal

    return lambda: temporal.create_stage(mode, device, window)


def _reading(model: str | None) -> str:
    from models.estimate import method_for

    return method_for(model)


def _half_scale(model: str | None) -> bool:
    from models import get_spec, model_names

    return model in model_names(lab=True) and get_spec(model).half_scale


def _learned_available() -> bool:
    from models import estimate_net

    return estimate_net.available()


def _learned_reading(image: np.ndarray) -> float:
    from models.estimate import estimate

    return estimate(image, "net")


class TwoScaleReading:
    """The frame's coarseness (the gate of ``--coarse-noise auto``) and its PCA level (which
    may raise the split's level, ``engines.phase_split.split_level``): one two-scale PCA pass
    (``models.estimate.coarseness_and_level``, which keeps the last frame's values) serves
    both, and the learned reading's gate, where they read the same frame."""

    def _read(self, image: np.ndarray) -> tuple[float, float]:
        from models.estimate import coarseness_and_level

        return coarseness_and_level(image)

    def coarseness(self, image: np.ndarray) -> float:
        return self._read(image)[0]

    def level(self, image: np.ndarray) -> float:
        """NaN for a frame too small to read (``AutoSigma`` keeps what it had: nothing, so the
        split's level is the learned reading's alone)."""
        return self._read(image)[1]


AutoState = tuple[float | None, int, tuple[float, ...]]


# the top of the noise range every shipped model was trained on (models/lab/train.py): above it
# a network's output is untested (at 1e6 it was black); levels told are capped there
TRAINED_MAX = 75.0

# A folder's pictures are each read; one whose reading differs from the picture before's by
# more than this many times starts a new shot (the same scene at another ISO: about 1.4 times
# the noise a stop).  Frames of one clip read within a few per cent of each other; levels
# under ``LEVEL_FLOOR`` count as it (a clean picture's reading is mostly its texture).
LEVEL_JUMP = 1.3
LEVEL_FLOOR = 2.0


class AutoSigma:
    """Noise level from the frames themselves: re-estimated every ``every`` frames, smoothed.

    ``first``: a sequence's first frames are each read, and the value is the median of their
    readings (one frame's reading can be an outlier that would hold for the whole shot); a
    single picture is read once, as before."""

    def __init__(self, estimator: Callable[[np.ndarray], float] | None = None,
                 every: int = 15, smoothing: float = 0.3, first: int = 1) -> None:
        self.estimator = estimator or default_estimator()
        self.every = max(1, every)
        self.smoothing = smoothing
        self.first = max(1, first)
        self.value: float | None = None
        self._count = 0
        self._firsts: tuple[float, ...] = ()  # the readings of the sequence's first frames

    def reset(self) -> None:
        self.value = None
        self._count = 0
        self._firsts = ()

    def state(self) -> AutoState:
        """The smoothed value, the frames read and the first readings, for ``restore`` on
        another reading."""
        return self.value, self._count, self._firsts

    def restore(self, state: AutoState) -> None:
        self.value, self._count, self._firsts = state

    def __call__(self, image: np.ndarray) -> float:
        if self._count < self.first:
            self._firsts += (self._read(image),)
            self.value = float(np.median(self._firsts))
        elif self.value is None or self._count % self.every == 0:
            est = self._read(image)
            self.value = est if self.value is None else (
                (1 - self.smoothing) * self.value + self.smoothing * est)
        self._count += 1
        return self.value

    def _read(self, image: np.ndarray) -> float:
        est = float(self.estimator(image))
        if not math.isfinite(est):  # e.g. a flat black frame: keep what we had
            est = self.value if self.value is not None else 0.0
        return min(max(est, 0.0), 255.0)


class Processor:
    """Frame -> denoised Frame.  ``sigma`` None means auto; ``strength`` scales the noise level.

    ``strength`` and ``sigma`` may be changed between frames (e.g. by a preview's keys).
    """

    def __init__(self, engine: Any, *, sigma: float | None = None, strength: float = 1.0,
                 temporal: Callable[[], TemporalStage] | None = None,
                 estimator: Callable[[np.ndarray], float] | None = None,
                 estimate_every: int = 15, coarse: str = "auto",
                 coarse_helper: Callable[[], Any] | None = None, wiener: bool = False) -> None:
        from engines import phase_split

        if coarse not in phase_split.MODES:
            raise UserError(f"--coarse-noise: expected one of {', '.join(phase_split.MODES)}, got {coarse!r}")
        self.engine = engine
        # ``auto`` blends with the phase split where the noise reads coarse (engines.phase_split),
        # read at the estimate's pace; never for a recurrent model (its previous output is not split)
        # nor for a model run at half resolution (its 2 x 2 means already make coarse noise finer,
        # and a split would cost it three times over)
        if _half_scale(getattr(engine, "model", None)):
            coarse = "off"
        self.coarse = coarse
        self._two_scales = TwoScaleReading()
        # a shot's first COARSE_FIRST frames each read: one frame's reading decides the split for
        # the whole shot (with the gate's hold), and on small frames it scatters (QCIF
        # ``carphone`` in light camera noise: 5.4 on its first frame, 2.7 to 5.5 after, median
        # 3.5; split throughout, 2.2 dB below not splitting and 1.1 below the noisy input)
        self.coarse_reading = AutoSigma(self._two_scales.coarseness, every=estimate_every,
                                        first=COARSE_FIRST) if coarse == "auto" else None
        self.coarse_frames = 0  # frames run with the phase split
        self._blending = False  # the shot's last frame was blended (``phase_split.auto_mode``)
        # another processor's gate taken over at a tier switch (``carry_coarse``): (sequence,
        # smoothed reading, frames read, blending), applied when that sequence starts here
        self._carried: tuple[int | None, AutoState, bool] | None = None
        # the split's level over the frame's, for the reading this model gets
        reading = _reading(getattr(engine, "model", None)) if coarse != "off" else "off"
        self.split_factor = phase_split.level_factor(reading)
        # the learned reading the split's level follows where the level is estimated
        # (phase_split.split_level): the model's own reading where that is the learned one,
        # else one read beside it; none under another estimator (a profile's NLF)
        own_reading = estimator is None
        self._reads_learned = own_reading and reading == "net"
        self._learned = AutoSigma(_learned_reading, every=estimate_every) \
            if own_reading and reading not in ("net", "off") and _learned_available() else None
        # and the PCA reading that may raise it (phase_split.split_level), read on blended
        # frames only, at the estimate's pace
        self._pca = AutoSigma(self._two_scales.level, every=estimate_every) \
            if self._reads_learned or self._learned is not None else None
        self.repeats = 0  # frames identical to the one before: given its output again
        # the last input (a reference: frames are not written to once made), the settings it
        # ran under and its result
        self._last: tuple[np.ndarray, float, float | None, Frame] | None = None
        # opens the engine whose split output the blend also averages in (engines.phase_split.
        # helper_for), at the first frame blended, so a run without coarse noise never opens it
        # (closed by ``close``); None: a blend of two
        self._helper_factory = coarse_helper
        self._helper: Any = None
        self.sigma = sigma
        self.strength = strength
        self.temporal_factory = temporal
        # the reading the model expects, and for a grey frame the one that reads it right
        self.estimator = estimator or default_estimator(getattr(engine, "model", None))
        self._estimator = grey.reading(self.estimator)
        self._read_memo: tuple[np.ndarray, float] | None = None  # the last picture read, its level
        self._picture_level: float | None = None  # the last picture's own reading (folders)
        self.auto = AutoSigma(self._read_once, every=estimate_every) if sigma is None else None
        self.grey_frames = 0  # grey frames: the network told ``grey.GAIN`` times their level
        self._last_sigma = 0.0  # the last frame's level (before that gain), for the mean
        self.last_estimate: float | None = None  # the (smoothed) estimated noise level
        self.sigma_sum = 0.0
        self.count = 0
        self._sequence: int | None = None
        self._temporal: TemporalStage | None = None
        self._prev: np.ndarray | None = None  # previous output, for temporal models
        # a recurrent model trained on its previous output warped along the optical flow
        # between the noisy frames gets it so (``models.align``)
        self._aligner = _aligner_for(getattr(engine, "model", None))
        self.cuts = SceneCuts()
        self.shots = 0  # sequences and scene cuts seen: each got its own noise estimate
        # the Wiener pass (``models.wiener``; ``--wiener``) after the network where the noise
        # reads white, after the phase split's sub-images where it reads coarse, for a model
        # with a measured share (another takes none: no pass, and none counted); frames it ran on
        from models.wiener import SHARE

        self.wiener = wiener and not getattr(engine, "temporal", False) \
            and getattr(engine, "model", None) in SHARE
        self.wiener_frames = 0

    def split_sigma(self, image: np.ndarray, level: np.ndarray,
                    averaged: np.ndarray | None = None) -> float | np.ndarray | None:
        """The level the phase split's sub-images are told (``phase_split.split_level`` of the
        learned and the PCA readings, times ``strength``, capped as ``noise_level`` caps) where
        the level is estimated and one number; None (``factor`` times the level) where it is
        told or a map.  ``averaged``: ``image`` is the noisy frame whose inputs were averaged
        (the level a map of the share of noise left, per pixel): the level read from it times
        that share, as a (1, H, W) map (a coarse noise averaged over frames stays coarse, only
        weaker)."""
        if self.sigma is not None or (level.ndim != 1 and averaged is None):
            return None
        if self._reads_learned:
            reading = self.last_estimate
        elif self._learned is not None:
            reading = self._learned(image)
        else:
            return None
        if reading is None:
            return None
        from engines.phase_split import split_level

        pca = self._pca(image) if self._pca is not None else None
        split = min(split_level(reading, pca) * self.strength, TRAINED_MAX)
        return split if averaged is None else (split * averaged)[None].astype(np.float32)

    def _new_sequence(self, sequence: int) -> None:
        self._sequence = sequence
        self.shots += 1
        self._prev = None
        if self._aligner is not None:
            self._aligner.reset()
        if self.auto is not None:
            self.auto.reset()
        if self.coarse_reading is not None:
            self.coarse_reading.reset()
            self._blending = False
            carried, self._carried = self._carried, None
            if carried is not None and carried[0] == sequence:
                _, state, self._blending = carried
                self.coarse_reading.restore(state)
        if self._learned is not None:
            self._learned.reset()
        if self._pca is not None:
            self._pca.reset()
        self._temporal = self.temporal_factory() if self.temporal_factory else None

    def carry_coarse(self, other: Processor) -> None:
        """Take over ``other``'s coarse-noise gate (its smoothed reading and whether it was
        blending) for the sequence it was on: at a tier switch the noise is the stream's, not
        the tier's, and a reading that hovers at the gate must not start over (on a clip whose
        reading alternated 5.9 and 4.0, the new tier started under the gate and lost 3 dB)."""
        if self.coarse_reading is not None and other.coarse_reading is not None:
            self._carried = (other._sequence, other.coarse_reading.state(), other._blending)

    def noise_level(self, image: np.ndarray) -> float:
        """The noise level given to the model: fixed or estimated, times ``strength``, capped
        at 75, the top of the range every shipped model was trained on (models/lab/train.py):
        above it a network's output is untested (at 1e6 it was black)."""
        if self.sigma is not None:
            base = float(self.sigma)
        else:
            if self.auto is None:
                self.auto = AutoSigma(default_estimator(getattr(self.engine, "model", None)))
            h, w = image.shape[:2]
            if min(h, w) < 16:  # the estimator needs 8 x 8 patches: tile a tiny frame's pixels
                image = np.pad(image, ((0, max(0, 16 - h)), (0, max(0, 16 - w)))
                               + ((0, 0),) * (image.ndim - 2), mode="wrap")
            base = self.auto(image)
            self.last_estimate = base
        level = base * self.strength
        if not math.isfinite(level) or level < 0:
            level = 0.0
        if level > TRAINED_MAX:
            if not getattr(self, "_cap_warned", False):
                log.warning("noise level %.1f is above the range the model was trained on "
                            "(0..%.0f); using %.0f", level, TRAINED_MAX, TRAINED_MAX)
                self._cap_warned = True
            level = TRAINED_MAX
        return level

    def __call__(self, frame: Frame, window: Window | None = None) -> Frame:
        """Denoise ``frame``; ``window``: the noisy frames before and after it (nearest first,
        ``stream.lookahead``), which a file job's ``auto`` smoothing averages it with."""
        repeat = self._repeat(frame)
        if repeat is not None:
            return repeat
        result = self._process(frame, window)
        self._last = (frame.image, self.strength, self.sigma, result)
        return result

    def _repeat(self, frame: Frame) -> Frame | None:
        """A frame byte-identical to the one before, under the same settings (a source
        repeating frames to fill its rate, a paused screen): the previous output again, and no
        state moves (it brings no new noise to average)."""
        if self._last is None or frame.sequence != self._sequence or getattr(self.engine, "temporal", False):
            return None  # a recurrent model refines its previous output: it runs again
        image, strength, sigma, result = self._last
        if strength != self.strength or sigma != self.sigma or not same_frame(image, frame.image):
            return None
        self.sigma_sum += self._last_sigma
        self.count += 1
        self.repeats += 1
        return dataclasses.replace(frame, image=result.image, sigma=result.sigma, original=frame.image,
                                   coarse=result.coarse)

    def _process(self, frame: Frame, window: Window | None = None) -> Frame:
        cut = self.cuts(frame.image)
        if frame.name is not None and self.auto is not None:
            cut = self._level_jump(frame.image) or cut
        if frame.sequence != self._sequence or cut:
            self._new_sequence(frame.sequence)
        sigma = self.noise_level(frame.image)
        # a grey frame's equal channels carry its noise sqrt(3) times over (``stream.grey``):
        # the network and the Wiener pass are told so; the smoothing keeps the level itself
        # (told the gain too, its motion tests averaged less: grey ``still`` at sigma 20
        # 35.05 dB, flicker 1.49, against 35.46 / 0.93; ``carphone`` 33.53 / 3.50 against
        # 33.72 / 3.19; ``bus`` and ``bikes`` within 0.04 dB)
        gain = grey.GAIN if grey.is_grey(frame.image) else 1.0
        if gain != 1.0:
            self.grey_frames += 1
        told = min(sigma * gain, TRAINED_MAX)
        self._last_sigma = sigma
        prev = None
        # a smoothing stage may tell a recurrent model to go without its previous output
        # (``switch``: while the camera is still, the smoothing does the averaging)
        if getattr(self.engine, "temporal", False) and self._prev is not None \
                and self._prev.shape == frame.image.shape \
                and getattr(self._temporal, "feed_back", True):
            prev = self._prev[None]
        if self._aligner is not None:  # every frame: it keeps the last one's grey cells
            warped = self._aligner(frame.image, None if prev is None else prev[0])
            prev = None if warped is None else warped[None]
        image, level = frame.image, np.array([told], np.float32)
        averaged: np.ndarray | None = None  # per pixel, the noise left by the inputs' mean
        average = getattr(self._temporal, "average_input", None)
        # a fusion twin (``aligned``) run without its previous output (``switch`` on a still
        # camera) is exactly its per-frame net, and takes the inputs' mean like one; the mean
        # is kept up on every frame
        if average is not None and (self._aligner is not None or not getattr(self.engine, "temporal", False)):
            around = getattr(self._temporal, "average_window", None)
            if window is not None and around is not None:  # a file job: the frames around it
                mean, scale = around(frame, sigma, window)
            else:  # a still camera: the mean of the inputs so far
                mean, scale = average(frame, sigma)
            if prev is None:  # (a per-frame model never has one)
                image = mean
            if prev is None and scale is not None:  # told, per pixel, the noise that is left
                level_map = getattr(self.engine, "level_map", None)  # a profile's NLF
                base = level_map(image, told) if level_map is not None else np.float32(told)
                level = (base * scale)[None].astype(np.float32)
                averaged = scale
        prepare = getattr(self._temporal, "prepare", None)
        try:
            if prepare is not None:  # the smoothing reads the motion while the engine runs
                prepare(frame, sigma)
            mode = "off" if getattr(self.engine, "temporal", False) else self.coarse_mode(frame.image)
            if mode == "off":
                out = self.engine.infer(image[None], level, prev)[0]
                if self.wiener:
                    out = self._second_pass(image, out, level)
            else:
                from engines import phase_split

                helper = self._helper_infer() if mode == "blend" else None
                split_infer = None
                if self.wiener:  # the sub-images' noise is about white: the pass after each
                    split_infer = self._split_wiener(self.engine.infer, getattr(self.engine, "model", None))
                    self.wiener_frames += 1
                    if helper is not None:
                        helper = self._split_wiener(helper, getattr(self._helper, "model", None))
                split = self.split_sigma(frame.image, level, averaged)  # (None: from ``level``,
                split = None if split is None else split * gain  # which carries the gain)
                out = phase_split.run(self.engine.infer, image[None], level, mode, self.split_factor,
                                      helper, split, split_infer)[0]
                self.coarse_frames += 1
            if getattr(self.engine, "temporal", False):
                self._prev = out
            result = dataclasses.replace(frame, image=out, sigma=sigma, original=frame.image, coarse=mode)
            if self._temporal is not None:
                result = self._temporal(result)
        except BaseException:  # the engine failed, or a Ctrl-C: no motion reading outlives it
            if prepare is not None:
                self._temporal.settle()  # type: ignore[union-attr]
            raise
        self.sigma_sum += sigma
        self.count += 1
        return result

    def _read_once(self, image: np.ndarray) -> float:
        """The estimator's reading of ``image``, read once however often it is asked."""
        if self._read_memo is None or self._read_memo[0] is not image:
            self._read_memo = (image, float(self._estimator(image)))
        return self._read_memo[1]

    def _level_jump(self, image: np.ndarray) -> bool:
        """A picture (from a folder) whose own noise reading differs from the last one's by
        more than ``LEVEL_JUMP`` times: a new shot, though its content may be the same (one
        scene shot at ISO 1600, 6400 and 3200 in one folder is no cut by content, and the
        level carried from the first picture cost the ISO 6400 one 7.8 dB)."""
        level, last = self._read_once(image), self._picture_level
        self._picture_level = level
        if last is None or not (math.isfinite(level) and math.isfinite(last)):
            return False
        ratio = max(level, LEVEL_FLOOR) / max(last, LEVEL_FLOOR)
        return ratio > LEVEL_JUMP or ratio < 1 / LEVEL_JUMP

    def _second_pass(self, image: np.ndarray, out: np.ndarray, level: np.ndarray) -> np.ndarray:
        """``out`` refined by the Wiener pass with it as the pilot (``models.wiener``), told
        the level the network was told (a number, or per pixel after a window's average)."""
        from models.wiener import second_pass

        told = float(level[0]) if level.ndim == 1 else level[0]
        refined = second_pass(getattr(self.engine, "model", None), image, out, told)
        if refined is not out:  # (a model with no share, or no noise: the output as it was)
            self.wiener_frames += 1
        return refined

    def _split_wiener(self, infer: Callable[..., np.ndarray], model: str | None) -> Callable[..., np.ndarray]:
        """``infer`` for the phase split's sub-images with the Wiener pass after it, told
        ``models.wiener.SPLIT`` times the level the sub-images were told."""
        from models.wiener import split_pass

        return lambda frames, level: split_pass(model, frames, infer(frames, level), level)

    def coarse_mode(self, image: np.ndarray) -> str:
        """How the engine runs this frame: ``off`` or ``blend`` (``--coarse-noise``; ``auto``:
        ``blend`` while the frame's noise reads coarse)."""
        if self.coarse != "auto":
            return self.coarse
        from engines.phase_split import auto_mode

        assert self.coarse_reading is not None
        mode = auto_mode(self.coarse_reading(image), self._blending)
        self._blending = mode == "blend"
        return mode

    def _helper_infer(self) -> Callable[..., np.ndarray] | None:
        if self._helper_factory is not None:
            factory, self._helper_factory = self._helper_factory, None
            self._helper = factory()
        return None if self._helper is None else self._helper.infer

    def close(self) -> None:
        """Close the helper engine if one was opened (the main engine is the caller's)."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    @property
    def mean_sigma(self) -> float:
        return self.sigma_sum / self.count if self.count else 0.0

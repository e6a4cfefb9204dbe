"""Temporal stage: what ``--temporal off|auto|light|strong`` does to a sequence.

- ``auto`` (the default): run the chosen model's recurrent twin (``base`` -> ``base-temporal``)
  when one is registered and its weights are released for it (metadata ``temporal_auto`` set,
  only once ``python -m models eval-video`` shows it beating the per-frame model on held-out
  video; its value, ``off|auto|light|strong``, is the smoothing that runs after the twin,
  ``yes`` meaning ``off``).  The twin sees its previous output, which the processor feeds back
  and resets per sequence.  Otherwise ``auto`` is the still-camera-aware smoothing
  (``models.still_camera.StillCameraFilter``): its motion test reads the noisy input
  (``Frame.original``) at half resolution; it averages up to 16 frames where the camera is
  still and up to 4 along the motion (optical flow) where it moves; on a still camera the
  noisy inputs are also averaged before the engine (``models.input_average.InputAverage``,
  through :meth:`SmoothingStage.average_input`), and the motion is read on a worker thread
  while the engine runs (:meth:`SmoothingStage.prepare`).  It measured never worse than
  ``off`` on every clip of ``models eval-video --suite``.
- ``light`` / ``strong``: the motion-adaptive recursive filter after the per-frame denoiser
  (``models.temporal_filter``): blend with the previous output where the difference is
  explained by the residual noise, keep the new frame where something moved; reset on cuts,
  size changes and a new ``Frame.sequence``.
- ``switch`` (chosen by ``plan`` for a twin released with ``temporal_auto = switch``, not a
  ``--temporal`` value): the ``auto`` smoothing, and the twin gets its previous output only
  while the smoothing reads the camera as moving (``StillCameraFilter.camera_moving`` at the
  frame before); on a still camera the twin denoises frame by frame and the smoothing does
  the long averaging (the twin's outputs are correlated over time, so averaging them after
  its recurrence gains less; ``models eval-video`` measures both).
- ``off``: frame by frame.

``plan(model, mode)`` turns the options into (model to run, smoothing mode);
``create_stage(mode, device)`` makes a fresh Frame -> Frame smoothing stage for one sequence.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from models.input_average import InputAverage
from models.still_camera import StillCameraFilter
from models.temporal_filter import MODES, RecursiveFilter
from models.window_average import StillShare, WindowAverage

from .frame import Frame

if TYPE_CHECKING:
    from .lookahead import Window

log = logging.getLogger(__name__)

# Smoothing used by ``auto`` when the model has no trained recurrent twin: the still-camera
# aware filter, itself called ``auto``.
AUTO_FALLBACK = "auto"
SMOOTHING = ("auto", "switch", *MODES)
# Noise level assumed for frames that arrive without one (0..255).
DEFAULT_SIGMA = 15.0


def _released(name: str) -> str | None:
    """The smoothing to run after a released recurrent model, or None if not released."""
    import models

    meta = models.load_metadata(name)
    after = meta.get("temporal_auto")
    if after not in ("yes", "off", *SMOOTHING):
        return None
    return "off" if after == "yes" else after


def temporal_twin(model: str) -> str | None:
    """The recurrent variant of ``model`` released for ``auto`` (itself if it is one), or None."""
    import models

    try:
        if models.get_spec(model).temporal:
            return model
    except models.UnknownModelError:
        return None
    twin = f"{model}-temporal"
    if twin not in models.model_names() or _released(twin) is None:
        return None
    return twin


def plan(model: str, mode: str) -> tuple[str, str]:
    """(model to run, smoothing mode) for ``--model model --temporal mode``."""
    if mode != "auto":
        return model, mode
    twin = temporal_twin(model)
    if twin is not None:
        # a twin asked for by name but not released for auto: the still-camera smoothing
        # after it, which measured better than it alone on every clip of the suite
        after = _released(twin) or AUTO_FALLBACK
        log.info("temporal auto: recurrent model %s, smoothing %s", twin, after)
        return twin, after
    log.info("temporal auto: no trained recurrent twin of %s; %s smoothing", model, AUTO_FALLBACK)
    return model, AUTO_FALLBACK


class SmoothingStage:
    """Frame -> Frame recursive smoothing over one sequence (state resets itself when
    ``Frame.sequence`` or the frame size changes, and on scene cuts).  ``auto`` runs on the
    CPU in OpenCV whatever the device (a few ms a 640x360 frame).

    ``window`` (``auto`` in a file job, ``stream.lookahead``): the processor averages each
    noisy input with the frames around it (``average_window``) instead of the causal
    ``average_input``, and the smoothing's output is taken only while it reads a still camera
    (there it averages over up to 16 frames, past the window; ``StillShare`` fades between the
    two over a few frames); on a moving camera its warped
    running average cost 0.1 to 0.2 dB after the window (the dev clips of ``eval-video``)."""

    def __init__(self, mode: str = "light", device: str = "cpu", window: bool = False) -> None:
        if mode not in SMOOTHING:
            raise ValueError(f"expected a smoothing mode in {sorted(SMOOTHING)}, got {mode!r}")
        self.mode = mode
        self.device = device
        self.filter: RecursiveFilter | StillCameraFilter = (
            StillCameraFilter() if mode in ("auto", "switch") else RecursiveFilter(mode))
        self.sequence: int | None = None
        # ``auto``: the noisy input averaged before the denoiser: over the frames around it in
        # a file job (``window``), else over time on a still camera
        self.window = WindowAverage() if window and mode == "auto" else None
        self.average = InputAverage() if mode in ("auto", "switch") and self.window is None else None
        self.share = StillShare()  # ``window``: how much of the smoothing's output is taken
        # reads the camera's motion from the noisy input while the engine denoises it (OpenCV
        # and ONNX Runtime release the GIL, so the two overlap on two cores)
        self._motion: threading.Thread | None = None
        self._motion_error: BaseException | None = None

    def _check_sequence(self, frame: Frame) -> None:
        if frame.sequence != self.sequence:
            self.filter.reset()
            if self.average is not None:
                self.average.reset()
            if self.window is not None:
                self.window.reset()
            self.share.reset()
            self.sequence = frame.sequence

    def average_window(self, frame: Frame, sigma: float,
                       around: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """What the denoiser gets for ``frame`` in a file job (``window``): its noisy input
        averaged with the frames ``around`` it (``stream.lookahead.Window``) where they
        match, and per pixel the factor by which its noise is lower
        (``models.window_average.WindowAverage``); without a window, ``average_input``."""
        if self.window is None or frame.image.ndim != 3:
            return self.average_input(frame, sigma)
        self._check_sequence(frame)
        return self.window(frame.image, around.before, around.after, sigma, around.warp)

    def average_input(self, frame: Frame, sigma: float) -> tuple[np.ndarray, np.ndarray | None]:
        """What the denoiser gets for ``frame`` (called by the processor before the engine
        runs; not for a recurrent model): with ``auto``, while the smoothing read a still
        camera at the frame before, the noisy input averaged over the frames in which
        nothing changed and, per pixel, the factor by which its noise is lower
        (``models.input_average.InputAverage``); otherwise the frame and None."""
        if self.average is None or frame.image.ndim != 3:
            return frame.image, None
        self._check_sequence(frame)
        assert isinstance(self.filter, StillCameraFilter)
        return self.average(frame.image, sigma, self.filter.scene_still)

    def prepare(self, frame: Frame, sigma: float) -> None:
        """Called by the processor with the noisy frame and its level before the engine runs:
        the ``auto`` smoothing reads the camera's motion and tests what changed (everything
        but the final blend) on another thread meanwhile."""
        if not isinstance(self.filter, StillCameraFilter) or frame.image.ndim != 3:
            return
        self._check_sequence(frame)
        self.settle()
        # not a daemon: a Ctrl-C can leave it mid-way through OpenCV's optical flow, and a
        # daemon thread still in OpenCV's thread pool when the process exits aborts it
        # ("terminate called without an active exception", exit -6: 3 of 40 interrupted runs);
        # the interpreter waits for this one at exit, a few milliseconds at most
        self._motion = threading.Thread(target=self._follow, args=(frame.image, float(sigma)),
                                        name="stream-motion", daemon=False)
        self._motion.start()

    def _follow(self, image: np.ndarray, sigma: float) -> None:
        try:
            assert isinstance(self.filter, StillCameraFilter)
            self.filter.follow(image, sigma)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the processor's thread
            self._motion_error = exc

    def settle(self) -> None:
        """Wait for the motion reading started by :meth:`prepare` (the processor also calls
        it when the engine failed, so no thread outlives the run)."""
        motion, self._motion = self._motion, None
        if motion is not None:
            interrupted: BaseException | None = None
            while motion.is_alive():  # a Ctrl-C during the join: it still finishes first
                try:
                    motion.join()
                except KeyboardInterrupt as exc:
                    interrupted = exc
            if interrupted is not None:
                raise interrupted
        if self._motion_error is not None:
            exc, self._motion_error = self._motion_error, None
            raise exc

    @property
    def feed_back(self) -> bool:
        """Whether a recurrent model before this stage gets its previous output for the next
        frame (the processor asks): always, except ``switch`` while the camera is still."""
        return self.mode != "switch" or bool(getattr(self.filter, "camera_moving", True))

    def __call__(self, frame: Frame) -> Frame:
        self.settle()
        self._check_sequence(frame)
        sigma = frame.sigma if frame.sigma is not None else DEFAULT_SIGMA
        if isinstance(self.filter, StillCameraFilter):
            out = self.filter(frame.image, sigma, frame.original)
            if self.window is not None:  # while the camera moves, the window's frame as it is
                out = self.share(out, frame.image, self.filter.scene_still)
        elif self.device == "cpu":
            out = self.filter(frame.image, sigma)
        else:
            import torch

            img = torch.from_numpy(np.ascontiguousarray(frame.image)).to(self.device)
            out = self.filter(img, sigma).cpu().numpy()
        return dataclasses.replace(frame, image=out)


def create_stage(mode: str, device: str, window: bool = False) -> SmoothingStage:
    """A fresh smoothing stage for one sequence (``auto``: the still-camera aware filter), on
    ``device`` (``stream.session`` passes the engine's); ``window``: a file job's, which also
    averages each input with the frames around it (``stream.lookahead``)."""
    return SmoothingStage(mode, device, window)

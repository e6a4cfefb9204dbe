"""Every kind of input and output, in one table each: what a spec on the command line opens.

Reserved words (``webcam``, ``0``, ``preview``, ``vcam``...) yield to a file or folder of that
name in the current folder; ``./name`` never is a reserved word.  An opener returns a source
or sink, None (not its kind) or raises ``UserError``; the first that returns one wins.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from models.data import name_key

from .base import Sink, Source
from .camera import is_camera_spec
from .errors import UserError
from .images import ImagesSource
from .live import LiveControls
from .options import RunOptions
from .sources import IMAGE_SUFFIXES, AVSource
from .urls import is_url
from .vcam import is_vcam_spec

PREVIEW_SPECS = ("preview", "window")


def is_existing_path(spec: str) -> bool:
    return os.path.lexists(spec) and not spec.startswith("/dev/")


def is_camera_input(spec: str) -> bool:
    return is_camera_spec(spec) and not is_existing_path(spec)


def is_preview(spec: str) -> bool:
    return spec in PREVIEW_SPECS and not is_existing_path(spec)


def is_live_sink(spec: str) -> bool:
    """An output that shows frames as they come: the preview window, a virtual camera."""
    return is_preview(spec) or (is_vcam_spec(spec) and not is_existing_path(spec))


def is_live_run(run: RunOptions) -> bool:
    """Camera input, ``--realtime``, the window or a virtual camera: the live path."""
    live = run.live
    return bool(is_camera_input(run.input) or live.realtime or live.preview or live.stats
                or not run.outputs or any(is_live_sink(s) for s in run.outputs))


SourceOpener = Callable[[str, RunOptions, LiveControls | None], Source | None]
SinkOpener = Callable[[str, RunOptions, Source, LiveControls | None], Sink | None]


def open_camera(spec: str, run: RunOptions, controls: LiveControls | None) -> Source | None:
    if not is_camera_input(spec):
        return None
    from .camera import CameraSource

    return CameraSource(spec, size=run.camera.size, fps=run.camera.fps, controls=controls)


def open_path(spec: str, run: RunOptions, controls: LiveControls | None) -> Source | None:
    """Files, folders, URLs and ``-``."""
    opts = run.reading
    if spec == "-" or is_url(spec):
        return AVSource(spec, opts)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"input not found: {spec}")
    if path.is_dir():
        images = sorted((p for p in path.iterdir()
                         if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=name_key)
        if not images:
            raise UserError(f"no images in folder {spec}")
        return ImagesSource(images, spec)
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {spec}: permission denied")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImagesSource([path], spec)
    return AVSource(spec, opts)


def open_preview(spec: str, run: RunOptions, source: Source,
                 controls: LiveControls | None) -> Sink | None:
    if not is_preview(spec):
        return None
    from .preview import PreviewSink, PreviewWindow
    from .views import PreviewState

    return PreviewSink(PreviewWindow(controls=controls, state=PreviewState(view=run.live.view)))


def open_vcam(spec: str, run: RunOptions, source: Source,
              controls: LiveControls | None) -> Sink | None:
    if not is_vcam_spec(spec) or is_existing_path(spec):
        return None
    from .vcam import open_vcam_sink

    return open_vcam_sink(spec, source)


def open_path_output(spec: str, run: RunOptions, source: Source,
                     controls: LiveControls | None) -> Sink | None:
    from .sinks import open_path_sink

    return open_path_sink(spec, run.encode, source)


SOURCE_OPENERS: tuple[SourceOpener, ...] = (open_camera, open_path)
SINK_OPENERS: tuple[SinkOpener, ...] = (open_preview, open_vcam, open_path_output)


def open_source(spec: str, run: RunOptions, controls: LiveControls | None = None) -> Source:
    for opener in SOURCE_OPENERS:
        source = opener(spec, run, controls)
        if source is not None:
            return source
    raise UserError(f"cannot open input {spec!r}")


def open_sink(spec: str, run: RunOptions, source: Source,
              controls: LiveControls | None = None) -> Sink:
    for opener in SINK_OPENERS:
        sink = opener(spec, run, source, controls)
        if sink is not None:
            return sink
    raise UserError(f"cannot open output {spec!r}")

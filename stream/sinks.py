"""Where frames go: video files, network streams and Y4M on stdout (see avsink.py), single
images, folders of images.

The interface is ``stream.base.Sink`` (``main_thread = True`` asks the pipeline to call it
from the calling thread: GUI windows); ``stream.openers`` holds the table of every kind
(preview window and virtual camera too) and picks one by what a spec names.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import Sink, Source
from .errors import UserError
from .frame import Frame
from .options import EncodeOptions
from .sources import IMAGE_SUFFIXES, is_url

log = logging.getLogger(__name__)


ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}
DEEP_SUFFIXES = {".png", ".tif", ".tiff"}  # 16 bits a channel


def image_extras(source: Source | None, frame: Frame) -> Any:
    """The input's grey/alpha for this frame (``images.ImageExtras``), or None."""
    extras = getattr(source, "extras", None)
    if extras is not None:
        return extras.get(frame.index)
    if source is not None and source.info.grey:
        from .images import ImageExtras

        return ImageExtras(grey=True)
    return None


def write_image(path: Path, image: np.ndarray, extras: Any = None,
                original: np.ndarray | None = None) -> bool:
    """(H, W, 3) uint8 RGB -> an image file; the format follows the suffix.  ``extras``
    (``images.ImageExtras``): a grey input is written as grey (the mean of the denoised
    channels), an alpha channel unchanged (True is returned when the format cannot hold it),
    a 16-bit input as 16 bits in .png/.tif (its own picture plus the change the denoiser made
    to ``original``, the 8-bit input).  Written under a temporary name and renamed, so the
    file is never seen half written."""
    import cv2

    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    base = image
    hi = extras.hi if extras is not None else None
    if hi is not None and suffix in DEEP_SUFFIXES and original is not None \
            and hi.shape == image.shape == original.shape:
        change = image.astype(np.int32) - original.astype(np.int32)
        base = np.clip(hi.astype(np.int32) + change * 257, 0, 65535).astype(np.uint16)
    if extras is not None and extras.grey:
        pixels = np.round(base.mean(axis=2, dtype=np.float32)).astype(base.dtype)
    else:
        pixels = np.ascontiguousarray(base[..., ::-1])  # RGB -> BGR
    alpha = extras.alpha if extras is not None else None
    dropped = False
    if alpha is not None and suffix in ALPHA_SUFFIXES and alpha.shape == image.shape[:2]:
        if alpha.dtype != pixels.dtype:
            alpha = (alpha.astype(np.uint16) * 257 if pixels.dtype == np.uint16
                     else ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8))
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        pixels = np.dstack([pixels, alpha])
    else:
        dropped = alpha is not None
    try:
        ok, data = cv2.imencode(path.suffix, pixels, params)
    except cv2.error:
        ok = False
    if not ok:
        raise UserError(f"cannot write image {path}: unsupported format {path.suffix!r}")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        data.tofile(str(partial))
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return dropped


def _warn_alpha(sink: Any, path: Path) -> None:
    if not getattr(sink, "_alpha_warned", False):
        log.warning("%s cannot hold the input's alpha channel; it is left out (use .png, .webp "
                    "or .tif)", path.suffix or path.name)
        sink._alpha_warned = True


class ImageSink(Sink):
    """One image file (the input is one image)."""

    def __init__(self, path: Path, source: Source | None = None) -> None:
        super().__init__(str(path))
        self.path = path
        self.source = source

    def write(self, frame: Frame) -> None:
        if self.frames_written:
            raise UserError(f"{self.path} is a single image but more than one frame came; "
                            "name a folder instead")
        if write_image(self.path, frame.image, image_extras(self.source, frame), frame.original):
            _warn_alpha(self, self.path)
        self.frames_written += 1


class FolderSink(Sink):
    """One image per frame, keeping the input's file names (``000000.png``... for videos)."""

    def __init__(self, path: Path, suffix: str = ".png", source: Source | None = None) -> None:
        super().__init__(str(path))
        self.path = path
        self.suffix = suffix
        self.source = source
        self.created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create folder {path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.created and not self.frames_written:  # nothing came: leave no empty folder
            try:
                self.path.rmdir()
            except OSError:
                pass

    def write(self, frame: Frame) -> None:
        name = frame.name or f"{frame.index:06d}{self.suffix}"
        if write_image(self.path / name, frame.image, image_extras(self.source, frame),
                       frame.original):
            _warn_alpha(self, self.path / name)
        self.frames_written += 1


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(path: Path, input_spec: str | None, overwrite: bool,
                      folder: bool = False) -> None:
    """Refuse to overwrite the input, an existing output without -y, or an unwritable place."""
    if input_spec and input_spec != "-" and not is_url(input_spec) \
            and _same_file(path, Path(input_spec)):
        raise UserError(f"output {path} is the input; choose another output name")
    empty_folder = folder and path.is_dir() and not any(path.iterdir())
    if path.exists() and not overwrite and not empty_folder:
        raise UserError(f"output {path} exists; use -y to overwrite it")
    if path.exists() and path.is_dir() and not folder:
        raise UserError(f"output {path} is a folder")
    parent = path if folder and path.is_dir() else path.parent
    while folder and not parent.exists() and parent != parent.parent:
        parent = parent.parent  # folders are created with their parents
    if not parent.exists():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: permission denied")


def open_path_sink(spec: str, opts: EncodeOptions | None, source: Source | None) -> Sink | None:
    """Files, folders, URLs and ``-``."""
    from .avsink import AVSink  # PyAV encoders: files, network streams, Y4M on stdout

    overwrite = bool(opts and opts.overwrite)
    input_spec = source.description if source is not None else None
    if spec == "-" or is_url(spec):
        return AVSink(spec, opts, source)
    path = Path(spec)
    suffix = path.suffix.lower()
    is_folder = spec.endswith(("/", os.sep)) or path.is_dir() or (
        not suffix and source is not None and not source.is_video)
    if is_folder:
        check_output_path(path, input_spec, overwrite, folder=True)
        if input_spec and Path(input_spec).is_dir() and _same_file(path, Path(input_spec)):
            raise UserError(f"output {path} is the input folder")
        return FolderSink(path, source=source)
    check_output_path(path, input_spec, overwrite)
    if suffix in IMAGE_SUFFIXES:
        if source is not None and (source.is_video or (source.info.frames or 1) > 1):
            raise UserError(f"{spec} is a single image but the input has several frames; "
                            "name a folder (ending in /) to get one image per frame")
        return ImageSink(path, source)
    if source is not None and not source.is_video and (source.info.frames or 1) == 1 \
            and not suffix:
        return ImageSink(path, source)
    return AVSink(spec, opts, source)

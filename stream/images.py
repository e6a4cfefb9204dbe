"""Image inputs: one picture or a folder of pictures in name order, with what an image has
beyond 8-bit RGB (grey, alpha, 16 bits) kept for the image sinks (see sinks.write_image)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Source, SourceInfo
from .errors import UserError
from .frame import Frame
from .sources import rgb48_to_rgb24


@dataclass
class ImageExtras:
    """What an image has beyond RGB, carried past the denoiser to the image sinks."""

    grey: bool = False  # one channel (or grey + alpha): written back as grey
    alpha: np.ndarray | None = None  # (H, W) uint8 or uint16, written back unchanged
    hi: np.ndarray | None = None  # a 16-bit image: (H, W, 3) uint16 RGB (see hi_frames)


def read_image_parts(path: Path) -> tuple[np.ndarray, ImageExtras]:
    """Any image OpenCV reads -> (H, W, 3) uint8 RGB (16-bit scaled to 8) and its extras."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    # a JPEG (a phone's or a camera's) is turned upright by its EXIF orientation as it is read,
    # as viewers show it: the output carries no EXIF, so a portrait phone photo read "unchanged"
    # came out on its side.  JPEG has no alpha, so nothing else changes.
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if data[:3].tobytes() == b"\xff\xd8\xff" \
        else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(data, flags) if data.size else None
    except cv2.error:
        img = None
    if img is None:
        raise UserError(f"cannot read image {path}")
    extras = ImageExtras()
    if img.ndim == 3 and img.shape[2] == 4:
        extras.alpha = np.ascontiguousarray(img[..., 3])
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.dtype == np.uint16:  # denoised at 8 bits, written back at 16 (see hi_frames)
        rgb16 = np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., ::-1]
        extras.hi = np.ascontiguousarray(rgb16)
        img = rgb48_to_rgb24(img)
    elif img.dtype != np.uint8:
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round().astype(np.uint8) \
            if img.dtype.kind == "u" else np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        extras.grey = True
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    else:
        if extras.alpha is not None:  # OpenCV reads grey + alpha as BGRA, channels equal
            extras.grey = bool((img[..., 0] == img[..., 1]).all()
                               and (img[..., 1] == img[..., 2]).all())
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img), extras


def read_image(path: Path) -> np.ndarray:
    """Any image OpenCV reads -> (H, W, 3) uint8 RGB (grey, alpha and 16-bit converted)."""
    return read_image_parts(path)[0]


class ImagesSource(Source):
    """One image, or a folder of images in name order.  ``Frame.sequence`` changes with size."""

    is_video = False

    def __init__(self, paths: list[Path], description: str) -> None:
        super().__init__(description)
        self.paths = paths
        first = read_image_parts(paths[0])
        self._first: tuple[np.ndarray, ImageExtras] | None = first
        self.info = SourceInfo(width=first[0].shape[1], height=first[0].shape[0],
                               frames=len(paths), grey=first[1].grey)
        # Frame index -> grey/alpha of the images in flight (the queues hold a few frames;
        # older entries are dropped as new images are read)
        self.extras: dict[int, ImageExtras] = {}

    def frames(self) -> Iterator[Frame]:
        sequence = 0
        size = None
        for index, path in enumerate(self.paths):
            image, extras = self._first if index == 0 and self._first else read_image_parts(path)
            self._first = None
            if size is not None and image.shape != size:
                sequence += 1
            size = image.shape
            if extras.grey or extras.alpha is not None or extras.hi is not None:
                self.extras[index] = extras
            for old in [i for i in self.extras if i < index - 64]:
                del self.extras[old]
            yield Frame(image=image, index=index, name=path.name, sequence=sequence)
            self.frames_read = index + 1
        self.finished = True

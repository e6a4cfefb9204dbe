"""A JPEG with an EXIF orientation (a phone held upright) comes out upright: the output carries
no EXIF, so the pixels themselves are turned as viewers turn the input."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from models.metrics import psnr
from stream.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"


def jpeg_with_orientation(img: np.ndarray, orientation: int) -> bytes:
    """``img`` (BGR) as a JPEG whose EXIF (APP1) holds only the Orientation tag."""
    jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0))
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    return jpg[:2] + app1 + jpg[2:]


def test_exif_orientation_is_applied(tmp_path):
    img = cv2.imread(str(DATA / "astronaut_crop.png"))  # 192 x 256, landscape as stored
    src = tmp_path / "phone.jpg"
    src.write_bytes(jpeg_with_orientation(img, 6))  # 6: shown turned 90 degrees clockwise
    upright = cv2.imread(str(src))  # OpenCV's default read applies it, as viewers do
    assert upright.shape == (256, 192, 3)
    out = tmp_path / "out.png"
    assert main([str(src), str(out), "--sigma", "0", "--temporal", "off", "-q"]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (256, 192, 3)  # was (192, 256, 3): on its side
    assert psnr(got.astype(np.float64), upright.astype(np.float64), 255) > 40

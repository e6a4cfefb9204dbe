"""An interlaced input is said so, once, with the FFmpeg command that deinterlaces it."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from stream.cli import main


def clip(path, interlaced: bool) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        if interlaced:
            s.options = {"x264-params": "tff=1"}
        rng = np.random.default_rng(0)
        for i in range(4):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


@pytest.mark.parametrize("interlaced", [True, False])
def test_interlaced_input_is_said(tmp_path, caplog, read, interlaced):
    src = tmp_path / "in.mp4"
    clip(src, interlaced)
    with caplog.at_level(logging.WARNING):
        assert main([str(src), str(tmp_path / "out.mp4"), "--temporal", "off", "-q"]) == 0
    said = [r.getMessage() for r in caplog.records if "interlaced" in r.getMessage()]
    message = (f"{src} is interlaced: each frame is denoised as one picture, its two fields "
               "combed together; deinterlace it first (ffmpeg -i IN -vf bwdif -c:a copy OUT)")
    assert said == ([message] if interlaced else [])
    assert len(read(tmp_path / "out.mp4")["frames"]) == 4

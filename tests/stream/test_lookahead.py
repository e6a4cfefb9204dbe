"""A file job looks ahead (``stream.lookahead``): order, windows, the end, Ctrl-C, the CLI."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from conftest import read_folder, write_folder

from models.metrics import psnr
from stream.cli import main
from stream.frame import Frame
from stream.lookahead import LookAhead
from stream.pipeline import Pipeline


class Recorder:
    """A processor that records the window each frame came with and returns the frame."""

    def __init__(self, radius: int, fail_at: int | None = None) -> None:
        self.windows: dict[int, tuple[list[int], list[int]]] = {}
        self.radius = radius
        self.fail_at = fail_at

    def __call__(self, frame: Frame, window=None) -> Frame:
        if frame.index == self.fail_at:
            self.fail_at = None  # a Ctrl-C once, while this frame is denoised
            raise KeyboardInterrupt
        assert window.warp == self.radius
        self.windows[frame.index] = ([int(f[0, 0, 0]) for f in window.before],
                                     [int(f[0, 0, 0]) for f in window.after])
        return frame


def frames(n: int, sequence: int = 0, start: int = 0, size: int = 8) -> list[Frame]:
    return [Frame(image=np.full((size, size, 3), start + i, np.uint8), index=start + i,
                  sequence=sequence) for i in range(n)]


def test_frames_come_out_in_order_with_their_windows():
    rec = Recorder(2)
    ahead = LookAhead(rec, 2)
    out = []
    for f in frames(6):
        got = ahead(f)
        out += got
        # nothing until the frame two after it is read, then one a frame
        assert len(got) == (0 if f.index < 2 else 1)
    out += ahead.flush()
    assert [f.index for f in out] == list(range(6))
    assert rec.windows[0] == ([], [1, 2])
    # before: up to ``models.window_average.PAST`` frames (a still camera's long mean)
    assert rec.windows[3] == ([2, 1, 0], [4, 5])
    assert rec.windows[5] == ([4, 3, 2, 1, 0], [])  # the end: only what there is


def test_a_new_sequence_is_not_looked_into():
    """Another input or a size change: the last sequence is finished first, and no window
    spans the two."""
    rec = Recorder(3)
    ahead = LookAhead(rec, 3)
    out = []
    for f in frames(4) + frames(3, sequence=1, start=10, size=6):
        out += ahead(f)
    out += ahead.flush()
    assert [f.index for f in out] == [0, 1, 2, 3, 10, 11, 12]
    assert rec.windows[3] == ([2, 1, 0], [])
    assert rec.windows[10] == ([], [11, 12])


class ListSource:
    live = False

    def __init__(self, items: list[Frame]) -> None:
        self.items = items

    def frames(self):
        yield from self.items


class ListSink:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def test_the_pipeline_writes_every_frame_read_also_after_ctrl_c():
    """The end of the input drains what the look-ahead holds; so does a Ctrl-C (here while
    frame 5 is denoised): every frame read before it is written, in order, and the run says
    it was interrupted."""
    sink = ListSink()
    result = Pipeline(ListSource(frames(12)), LookAhead(Recorder(3), 3), [sink]).run()
    assert [f.index for f in sink.frames] == list(range(12)) and not result.interrupted
    assert result.timings["process"].count == 12

    gate = threading.Event()

    class SlowSource(ListSource):  # reads no further than frame 8 before the interruption
        def frames(self):
            for f in self.items:
                if f.index == 9:
                    gate.wait(5)
                yield f

    sink = ListSink()
    rec = Recorder(3, fail_at=5)
    result = Pipeline(SlowSource(frames(12)), LookAhead(rec, 3), [sink], queue_size=1).run()
    gate.set()
    assert result.interrupted
    written = [f.index for f in sink.frames]
    assert written == list(range(len(written))) and len(written) >= 9  # 0..8 were read


def still_clip(n: int = 12, seed: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    scene = np.stack([60 + 100 * xx / 128, 50 + 120 * yy / 96,
                      90 + 40 * np.sin(xx / 9) * np.cos(yy / 7)], -1)
    scene += cv2.GaussianBlur(rng.normal(0, 30, scene.shape).astype(np.float32), (0, 0), 1.5)
    clean = [np.clip(np.rint(scene), 0, 255).astype(np.uint8)] * n
    noisy = [np.clip(np.round(c + rng.normal(0, 20, c.shape)), 0, 255).astype(np.uint8) for c in clean]
    return clean, noisy


def test_a_file_job_averages_with_the_frames_after_too(tmp_path):
    """``python -m stream noisy/ out/ --sigma 20`` with the shipped ``fast`` on a still
    scene: every frame is written under its name, and with the look-ahead (the default)
    every frame is better than with ``--lookahead 0`` (the causal ``auto`` of a live run),
    the first ones, which have no past, as much as the others."""
    clean, noisy = still_clip()
    write_folder(tmp_path / "in", noisy)
    runs = {}
    for la in ("4", "0"):
        out = tmp_path / f"out{la}"
        assert main([str(tmp_path / "in"), f"{out}/", "--sigma", "20", "--model", "fast",
                     "--lookahead", la, "-q"]) == 0
        runs[la] = read_folder(out)
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "in").iterdir())
    gains = [psnr(a, c, 255.0) - psnr(b, c, 255.0) for a, b, c in zip(runs["4"], runs["0"], clean)]
    # measured: +1.6 to +2.1 dB a frame (32.42 against 30.69 dB at the first), +1.9 on average
    assert min(gains) > 1.0 and np.mean(gains) > 1.5, gains


@pytest.mark.parametrize("extra,says", [
    (["--realtime"], "a live run"),
    (["--temporal", "light"], "--temporal light"),
])
def test_lookahead_where_it_cannot_apply_is_one_line(tmp_path, capsys, extra, says):
    _, noisy = still_clip(3)
    write_folder(tmp_path / "in", noisy)
    out = tmp_path / "out.mp4"
    code = main([str(tmp_path / "in"), str(out), "--lookahead", "2", "--sigma", "20", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0] and err[0].startswith("error:")
    assert not out.exists()

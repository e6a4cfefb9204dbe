"""What the calibration's preview window draws (stream/calibview.py), on arrays, and
``calibrate --preview`` where no display is: one line, exit 2, nothing written; without
``--preview`` a --realtime calibration goes on without the window (a warning)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_helpers import quick_calibration
from test_calibrate_cli import noisy_frames, write

from models.calibrate import measure_clip
from models.calibrate_profile import plot_nlf
from stream import calibview
from stream.calibview import Status, canvas
from stream.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return quick_calibration(tmp_path, monkeypatch)


def bar_fill(img: np.ndarray) -> int:
    return int((img == calibview.BAR_COLOUR).all(axis=2).sum(axis=1).max())


def test_canvas_draws_picture_progress_and_curve() -> None:
    frames = noisy_frames(16)[1]
    full = calibview.BAR_BOX[2] - calibview.BAR_BOX[0] - 3
    img = canvas(Status("cam", "reading", done=30, total=60), frames[0])
    assert img.shape == (calibview.HEIGHT, calibview.PICTURE_W + calibview.PANEL_W, 3)
    assert bar_fill(img) == round(full / 2)
    # the 96x64 picture fitted to the left part: 640 wide, 427 high, centred
    left = img[:, :calibview.PICTURE_W]
    rows = np.flatnonzero((left != calibview.BACKGROUND).any(axis=(1, 2)))
    assert rows.size == 427 and abs(rows[0] - (440 - 427) // 2) <= 1
    panel = img[calibview.TEXT_H:, calibview.PICTURE_W:]
    assert (panel == 255).all(axis=2).mean() < 0.02  # no curve yet: a line of text, no plot
    nlf = measure_clip(frames, "x").nlf
    img = canvas(Status("cam", "tuning", done=40, total=40, loss=0.05, nlf=nlf,
                        plot_title="cam"), frames[0])
    assert bar_fill(img) == full
    plot = cv2.cvtColor(plot_nlf(nlf, "cam"), cv2.COLOR_BGR2RGB)
    assert np.array_equal(img[calibview.TEXT_H:, calibview.PICTURE_W:], plot)


def test_preview_without_a_display(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str],
                                   caplog: pytest.LogCaptureFixture) -> None:
    clip = tmp_path / "still"
    clip.mkdir()
    for i, f in enumerate(noisy_frames(16)[1]):
        write(clip / f"{i:03d}.png", f)
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["calibrate", str(clip), "--name", "cam", "--preview", "--steps", "2", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --preview: no display for the preview window (DISPLAY is not set)"]
    assert not cache.exists() or not any(cache.iterdir())
    # a live source asks for the window by default; with no display it goes on without one
    assert main(["calibrate", str(clip), "--name", "cam", "--realtime", "--steps", "2", "-q"]) == 0
    assert any("calibrating without the preview window" in r.getMessage() for r in caplog.records)
    assert (cache / "cam" / "weights.safetensors").is_file()

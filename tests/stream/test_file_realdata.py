"""The real clips in ../shared/data/video through `python -m stream` (skipped when absent)."""
from __future__ import annotations

import pytest

from stream.cli import main

CLIPS = ["carphone_pristine.mp4", "bikes.mp4"]


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", CLIPS)
def test_real_clip_frames_and_timestamps(data_dir, tmp_path, read, ffprobe, name):
    src = data_dir / "video" / name
    if not src.exists():
        pytest.skip(f"{src} is missing")
    out = tmp_path / "out.mp4"
    assert main([str(src), str(out), "--model", "fast", "--backend", "torch",
                 "--device", "cpu", "--preset", "ultrafast", "--quiet"]) == 0
    a, b = read(src), read(out)
    assert len(b["frames"]) == len(a["frames"]) > 0
    assert b["times"] == a["times"]
    assert b["size"] == a["size"]
    assert b["audio"] == a["audio"]
    n = ffprobe("-count_frames", "-select_streams", "v", "-show_entries",
                "stream=nb_read_frames", "-of", "csv=p=0", str(out)).strip()
    assert n == str(len(a["frames"]))


@pytest.mark.data
def test_real_frame_folder(data_dir, tmp_path):
    import shutil

    import cv2

    src = data_dir / "video" / "davis-bus"
    if not src.is_dir():
        pytest.skip(f"{src} is missing")
    frames = tmp_path / "frames"
    frames.mkdir()
    names = sorted(p.name for p in src.glob("*.jpg"))[:6]
    for name in names:
        shutil.copy(src / name, frames / name)
    out = tmp_path / "out"
    assert main([str(frames), str(out), "--model", "fast", "--backend", "torch",
                 "--device", "cpu", "--sigma", "20", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert cv2.imread(str(out / name)).shape == cv2.imread(str(src / name)).shape

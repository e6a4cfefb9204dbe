"""Images, folders of images, Y4M out (parsed back) and in."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, add_noise, moving_scene, write_clip

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet"]


def imread_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_single_image(tmp_path, monkeypatch, identity_engine):
    import stream.cli
    import stream.session

    monkeypatch.setattr(stream.session, "open_engine", lambda opts: identity_engine)
    img = add_noise(moving_scene(1, 37, 23), 15)[0]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.png"
    assert main([str(src), str(out), "--quiet"]) == 0
    # identity engine + PNG: the exact pixels come back
    assert np.array_equal(imread_rgb(out), img)
    assert len(identity_engine.calls) == 1 and identity_engine.calls[0] > 5  # auto sigma


def test_image_with_real_model(tmp_path):
    img = moving_scene(1, 40, 30)[0]
    src = tmp_path / "in.jpg"
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.png"
    assert main([str(src), str(out), *FAST]) == 0
    assert imread_rgb(out).shape == (30, 40, 3)


def test_folder_keeps_names_order_and_sizes(tmp_path, monkeypatch):
    import stream.cli
    import stream.session

    seen: list[tuple[int, int, str | None]] = []

    class Recorder:
        name, model, temporal = "recorder", "recorder", False

        def infer(self, frames, sigma, prev=None):
            return frames.copy()

        def close(self):
            pass

    # record which sequence each frame belongs to through the temporal hook
    def factory():
        def stage(frame):
            seen.append((frame.sequence, frame.index, frame.name))
            return frame
        return stage

    monkeypatch.setattr(stream.session, "open_engine", lambda opts: Recorder())
    monkeypatch.setattr(stream.session, "load_temporal", lambda mode, device=None, window=False: factory)
    src = tmp_path / "frames"
    src.mkdir()
    sizes = {"b_002.png": (20, 16), "a_001.png": (20, 16), "c_003.jpg": (30, 22),
             "notes.txt": None}
    for name, size in sizes.items():
        if size is None:
            (src / name).write_text("not an image")
            continue
        img = moving_scene(1, *size)[0]
        img[0, 0] = len(name) + ord(name[0])  # no two alike: a repeated frame skips the stages
        cv2.imwrite(str(src / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main([str(src), str(out), "--sigma", "5", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["a_001.png", "b_002.png", "c_003.jpg"]
    for name in os.listdir(out):
        assert imread_rgb(out / name).shape[:2] == imread_rgb(src / name).shape[:2]
    assert np.array_equal(imread_rgb(out / "a_001.png"), imread_rgb(src / "a_001.png"))
    # name order, and a new sequence (fresh temporal state) when the size changes
    assert seen == [(0, 0, "a_001.png"), (0, 1, "b_002.png"), (1, 2, "c_003.jpg")]


def parse_y4m(data: bytes) -> tuple[dict[str, str], list[np.ndarray]]:
    """Minimal YUV4MPEG2 reader (4:2:0 or 4:4:4 planes)."""
    header, _, rest = data.partition(b"\n")
    fields = header.decode().split(" ")
    assert fields[0] == "YUV4MPEG2"
    info = {f[0]: f[1:] for f in fields[1:]}
    w, h = int(info["W"]), int(info["H"])
    chroma = info.get("C", "420jpeg")
    cw, ch = (w, h) if chroma.startswith("444") else ((w + 1) // 2, (h + 1) // 2)
    size = w * h + 2 * cw * ch
    frames = []
    while rest:
        tag, _, rest = rest.partition(b"\n")
        assert tag.startswith(b"FRAME"), tag[:20]
        frames.append(np.frombuffer(rest[:size], np.uint8))
        assert len(frames[-1]) == size
        rest = rest[size:]
    return info, frames


def run_cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True,
                          check=False,
                          env=env, timeout=300, **kw)


def test_y4m_to_stdout_parsed_back(clip_with_audio):
    res = run_cli([str(clip_with_audio.path), "-", *FAST])
    assert res.returncode == 0, res.stderr.decode()
    info, frames = parse_y4m(res.stdout)
    assert (info["W"], info["H"], info["F"]) == ("64", "48", "25:1")
    assert len(frames) == 12


@pytest.mark.parametrize("size", [(64, 48), (33, 21)])
def test_y4m_planes_hold_the_frames(tmp_path, monkeypatch, capsysbinary, identity_engine, read,
                                    size):
    """Identity engine: the Y4M planes are the input's pixels in BT.601 limited range."""
    import stream.cli
    import stream.session

    monkeypatch.setattr(stream.session, "open_engine", lambda opts: identity_engine)
    clip = write_clip(tmp_path / "in.mkv", add_noise(moving_scene(3, *size), 10),
                      codec="ffv1", pix_fmt="bgr0", audio=False)
    assert main([str(clip.path), "-", "--temporal", "off", "--quiet"]) == 0
    info, frames = parse_y4m(capsysbinary.readouterr().out)
    w, h = size
    assert (int(info["W"]), int(info["H"])) == size and len(frames) == 3
    assert info["C"].startswith("420" if w % 2 == 0 and h % 2 == 0 else "444")
    rgb = read(clip.path)["frames"][0].astype(np.float64)
    expect = 16 + 219 * (rgb @ np.array([0.299, 0.587, 0.114])) / 255
    luma = frames[0][: w * h].reshape(h, w)
    assert np.abs(luma - expect).max() <= 1.5


def test_folder_frames_without_zero_padding_play_in_number_order(tmp_path, monkeypatch,
                                                                 capsysbinary, identity_engine):
    """Frames saved as ``f1.png`` ... ``f12.png`` (no zero padding) play as 1, 2, ... 12, not
    1, 10, 11, 12, 2, ...: the Y4M frames' luma rises with the number in the name."""
    import stream.session

    monkeypatch.setattr(stream.session, "open_engine", lambda opts: identity_engine)
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(1, 13):
        cv2.imwrite(str(src / f"f{i}.png"), np.full((24, 32, 3), 15 * i, np.uint8))
    assert main([str(src), "-", "--temporal", "off", "--quiet"]) == 0
    _, frames = parse_y4m(capsysbinary.readouterr().out)
    luma = [round(float(f[: 32 * 24].mean())) for f in frames]
    assert luma == [round(16 + 219 * 15 * i / 255) for i in range(1, 13)]


def test_y4m_from_stdin(tmp_path, read):
    clip = write_clip(tmp_path / "in.mkv", moving_scene(5, 32, 24), audio=False)
    y4m = run_cli([str(clip.path), "-", *FAST])
    assert y4m.returncode == 0
    out = tmp_path / "out.mp4"
    res = run_cli(["-", str(out), *FAST], input=y4m.stdout)
    assert res.returncode == 0, res.stderr.decode()
    decoded = read(out)
    assert len(decoded["frames"]) == 5 and decoded["size"] == (32, 24)


def test_http_url_input(tmp_path, read, capsys):
    import functools
    import http.server
    import threading

    clip = write_clip(tmp_path / "web.mp4", moving_scene(10, 64, 48))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        out = tmp_path / "out.mp4"
        assert main([f"{base}/web.mp4", str(out), *FAST]) == 0
        a, b = read(clip.path), read(out)
        assert len(b["frames"]) == 10 and b["times"] == a["times"] and b["audio"] == a["audio"]
        assert main([f"{base}/missing.mp4", str(tmp_path / "o2.mp4"), *FAST]) == 2
        assert "404" in capsys.readouterr().err
    finally:
        server.shutdown()

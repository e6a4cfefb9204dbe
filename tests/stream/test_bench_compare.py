"""python -m stream.bench --compare on a tiny clip: a row per tier, per available filter and per
sigma, with sane values (no timing assertions)."""
from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest

from stream.bench import main
from stream.compare import FILTERS, available_filters, table

FFMPEG = shutil.which("ffmpeg")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """4 frames of 96x64: smooth gradients moving a pixel a frame (easy to denoise)."""
    path = tmp_path_factory.mktemp("compare") / "tiny.mp4"
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv444p"
        vs.codec_context.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(4):
            img = np.stack([(x + i) * 2, y * 3, 128 + 60 * np.sin((x + y + i) / 9)], -1)
            vf = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def test_compare_rows_and_json(tiny_clip, tmp_path):
    wanted = "hqdn3d"
    filters, notes = available_filters(FFMPEG, [wanted])
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    assert main(["--compare", "--clip", str(tiny_clip), "--frames", "4", "--sigma", "15,30",
                 "--models", "fast", "--backend", "torch", "--device", "cpu",
                 "--filters", wanted, "--json", str(out), "--plot", str(png)]) == 0
    data = json.loads(out.read_text())
    assert data["frames"] == 4 and data["size"] == [96, 64] and data["sigmas"] == [15.0, 30.0]
    assert data["notes"] == notes
    rows = {(r["method"], r["sigma"]): r for r in data["rows"]}
    expected = {"noisy input", "fast", "fast + Wiener", *filters}
    assert {m for m, _ in rows} == expected
    for sigma in (15.0, 30.0):
        noisy, fast = rows["noisy input", sigma], rows["fast", sigma]
        assert 10 < noisy["psnr"] < 30 and noisy["fps"] is None
        assert fast["psnr"] > noisy["psnr"] + 3 and fast["ssim"] > noisy["ssim"]
        assert fast["flicker"] < noisy["flicker"] and fast["fps"] > 0
        assert "torch-cpu" in fast["setting"]
        second = rows["fast + Wiener", sigma]  # what a file job writes: the pass costs time
        assert second["psnr"] > noisy["psnr"] + 3 and 0 < second["fps"] < fast["fps"]
        assert second["setting"].endswith("Wiener pass")
        for name in filters:
            r = rows[name, sigma]
            assert r["setting"] in FILTERS[name](sigma)  # the best of its grid, named
            assert r["psnr"] > noisy["psnr"] and 0 < r["ssim"] <= 1 and r["fps"] > 0
    assert json.loads(json.dumps(data)) == data
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = table(data["rows"])
    assert "| fast |" in text and text.count("\n") == 1 + len(expected)


def test_compare_json_to_stdout_without_ffmpeg(tiny_clip, tmp_path, capsys):
    missing = str(tmp_path / "no-ffmpeg")
    (tmp_path / "no-ffmpeg").write_text("")
    filters, notes = available_filters(None, ["hqdn3d"])
    assert filters == [] and "skipped" in notes[0]
    assert main(["--compare", "--clip", str(tiny_clip), "--frames", "3", "--sigma", "20",
                 "--models", "fast", "--backend", "torch", "--device", "cpu",
                 "--filters", "none", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in data["rows"]] == ["noisy input", "fast", "fast + Wiener"]
    assert main(["--compare", "--clip", str(tiny_clip), "--ffmpeg", missing]) == 2


@pytest.mark.parametrize("args, message", [
    (["--sigma", "abc"], "--sigma"),
    (["--sigma", "0"], "--sigma"),
    (["--frames", "1"], "--frames"),
    (["--clip", "/nonexistent.mp4"], "--clip"),
    (["--filters", "blur"], "--filters"),
    (["--models", "nope", "--filters", "none", "--frames", "2"], "unknown model 'nope'"),
])
def test_compare_bad_input(args, message, capsys):
    assert main(["--compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1

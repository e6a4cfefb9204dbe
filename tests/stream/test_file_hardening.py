"""Issue 12: tiny frames, the noise-level cap, zero decoded frames, Y4M and URL messages."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from conftest import read_video, write_clip

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet"]


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def random_frames(n: int, w: int, h: int) -> list[np.ndarray]:
    rng = np.random.default_rng(w * 100 + h)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


# -- 1. tiny frames: the auto noise estimate needed 8 px a side (a traceback before) ---------

@pytest.mark.parametrize("w, h", [(1, 1), (2, 2), (3, 5), (7, 7), (16, 1)])
def test_tiny_video(tmp_path, capsys, w, h):
    src = write_clip(tmp_path / "t.mkv", random_frames(3, w, h), codec="ffv1",
                     pix_fmt="yuv444p", audio=False)
    out = tmp_path / "o.mkv"
    assert main([str(src.path), str(out), "--codec", "ffv1", *FAST]) == 0, \
        capsys.readouterr().err
    res = read_video(out)
    assert res["size"] == (w, h) and len(res["frames"]) == 3


@pytest.mark.parametrize("w, h", [(1, 1), (3, 5)])
def test_tiny_image(tmp_path, capsys, w, h):
    import cv2

    src = tmp_path / "p.png"
    cv2.imwrite(str(src), random_frames(1, w, h)[0])
    out = tmp_path / "o.png"
    assert main([str(src), str(out), *FAST]) == 0, capsys.readouterr().err
    assert cv2.imread(str(out)).shape == (h, w, 3)


def _backends() -> list[str]:
    found = ["torch"]
    try:
        import onnxruntime  # noqa: F401

        found.append("onnxruntime")
    except ImportError:
        pass
    return found


@pytest.mark.parametrize("backend", _backends())
def test_tiny_frames_in_every_engine(backend):
    import engines

    with engines.open_engine(model="fast", backend=backend, device="cpu") as eng:
        for w, h in [(1, 1), (2, 2), (3, 5), (7, 7)]:
            frames = random_frames(2, w, h)
            out = eng.infer(np.stack(frames), np.array([10.0, 10.0], np.float32))
            assert out.shape == (2, h, w, 3) and out.dtype == np.uint8


def test_engine_pads_frames_below_a_runtime_minimum():
    """TensorRT plans have a smallest size (128 x 128 by default): smaller frames are
    edge-padded up to it inside the engine and the output cropped back (it was an error)."""
    from engines.base import CroppedPending, Pending, pad_to_min

    frames = np.stack(random_frames(2, 3, 5))
    sigma = np.full((2, 5, 3), 7.0, np.float32)
    padded, sig, prev, crop = pad_to_min(frames, sigma, frames.copy(), 128, 128)
    assert padded.shape == (2, 128, 128, 3) and sig.shape == (2, 128, 128) and crop == (5, 3)
    assert np.array_equal(padded[:, :5, :3], frames) and prev.shape == padded.shape
    assert np.array_equal(padded[:, 100, 100], frames[:, 4, 2])  # edge replicated
    assert pad_to_min(padded, sig, None, 128, 128)[3] is None  # large enough: untouched
    out = CroppedPending(inner=Pending(value=padded), size=crop).result()
    assert np.array_equal(out, frames) and out.flags["C_CONTIGUOUS"]


def test_tensorrt_fit_pads_small_and_refuses_too_large():
    pytest.importorskip("torch")
    from engines.base import EngineError
    from engines.cache import Profile
    from engines.tensorrt_backend import TensorRTEngine

    class Fake:  # only what _fit/_check use: no GPU needed
        profile = Profile(min=(128, 128), opt=(720, 1280), max=(1080, 1920))
        _check = TensorRTEngine._check

    frames = np.stack(random_frames(1, 1, 1))
    f, _, p, crop = TensorRTEngine._fit(Fake(), frames, np.array([5.0], np.float32), None)
    assert f.shape == (1, 128, 128, 3) and crop == (1, 1) and p is None
    big = np.zeros((1, 1200, 16, 3), np.uint8)
    with pytest.raises(EngineError, match="outside the TensorRT profile"):
        TensorRTEngine._fit(Fake(), big, np.array([5.0], np.float32), None)


# -- 2. the noise level given to the model is capped at the trained range (0..75) -----------

def test_sigma_above_training_range_is_capped_with_one_warning(tmp_path, capsys, caplog):
    frames = random_frames(4, 32, 24)
    src = write_clip(tmp_path / "c.mkv", frames, codec="ffv1", pix_fmt="yuv444p", audio=False)
    out = tmp_path / "o.mkv"
    assert main([str(src.path), str(out), "--codec", "ffv1", "--sigma", "200",
                 "--temporal", "off", *FAST]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [("noise level 200.0 is above the range the model was trained on "
                         "(0..75); using 75")]
    res = read_video(out)
    assert len(res["frames"]) == 4
    # capped, the picture keeps its brightness (at 1e6 it came out black)
    assert abs(float(np.mean(res["frames"][0])) - float(np.mean(frames[0]))) < 20


def test_processor_caps_strength_times_sigma(identity_engine):
    from stream.processor import Processor

    proc = Processor(identity_engine, sigma=20.0, strength=10.0)
    assert proc.noise_level(np.zeros((8, 8, 3), np.uint8)) == 75.0
    proc.strength = float("nan")  # the live keys cannot make it NaN, but nothing breaks if so
    assert proc.noise_level(np.zeros((8, 8, 3), np.uint8)) == 0.0
    proc.strength = 0.5
    assert proc.noise_level(np.zeros((8, 8, 3), np.uint8)) == 10.0


# -- 4. zero frames decoded is an error naming the input -------------------------------------

def _stdin(monkeypatch, data: bytes, tty: bool = False) -> None:
    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

        def isatty(self) -> bool:
            return tty

    monkeypatch.setattr(sys, "stdin", Stdin())


def test_y4m_with_a_cut_first_frame(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep")  # -y: still not replaced by nothing
    _stdin(monkeypatch, b"YUV4MPEG2 W16 H16 F25:1 C444\nFRAME\n" + bytes(100))
    line = one_error_line(capsys, ["-", str(out), "-y", *FAST])
    assert line == "error: no frames could be decoded from stdin; nothing was written"
    assert out.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_file_with_no_decodable_frame(tmp_path, capsys):
    import av

    src = tmp_path / "hollow.mkv"  # a valid container whose only packet is garbage
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv444p"
        pkt = av.Packet(b"\x00" * 64)
        pkt.stream, pkt.pts, pkt.dts = s, 0, 0
        c.mux(pkt)
    line = one_error_line(capsys, [str(src), str(tmp_path / "o.mp4"), *FAST])
    assert line.startswith(f"error: no frames could be decoded from {src}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hollow.mkv"]


# -- 7. messages in the user's terms ---------------------------------------------------------

@pytest.mark.parametrize("data, words", [
    (b"", "stdin is empty: expected a Y4M stream"),
    (bytes(range(200, 256)) * 20, "stdin is not a Y4M stream (it starts with"),
    (b"YUV4MPEG2 W16 H16 F25:1", "the Y4M header is cut short"),
    (b"YUV4MPEG2 W16 F25:1\nFRAME\n", "the Y4M header gives no picture height (H)"),
    (b"YUV4MPEG2 W-3 H16\nFRAME\n", "picture size W-3 is not a positive whole number"),
    (b"YUV4MPEG2 W16 H16 F25:0\nFRAME\n", "frame rate F25:0 is not N:D"),
    (b"YUV4MPEG2 W16 H16 F25:1 Cbogus\nFRAME\n", "FFmpeg refused its Y4M header"),
    (b"YUV4MPEG2" + b"x" * 5000, "the Y4M header starts with"),
    (b"YUV4MPEG2 " + b"W1 " * 2000, "no end of line in its first 4096 bytes"),
])
def test_bad_stdin(tmp_path, capsys, monkeypatch, data, words):
    _stdin(monkeypatch, data)
    assert words in one_error_line(capsys, ["-", str(tmp_path / "o.mp4"), *FAST])
    assert list(tmp_path.iterdir()) == []


def test_stdin_terminal(tmp_path, capsys, monkeypatch):
    _stdin(monkeypatch, b"", tty=True)
    assert "stdin is a terminal" in one_error_line(capsys, ["-", str(tmp_path / "o.mp4"), *FAST])


@pytest.mark.parametrize("url, words", [
    ("udp://127.0.0.1", "udp://127.0.0.1: no port given; expected udp://HOST:PORT"),
    ("srt://example.com", "no port given; expected srt://HOST:PORT"),
    ("udp://127.0.0.1:http", "the port is not a number"),
    ("udp://127.0.0.1:99999", "the port is not a number"),
])
def test_url_without_a_port(tmp_path, capsys, url, words):
    assert words in one_error_line(capsys, [url, str(tmp_path / "o.mp4"), *FAST])


def test_output_url_without_a_port(tmp_path, capsys, clip_with_audio):
    line = one_error_line(capsys, [str(clip_with_audio.path), "udp://127.0.0.1", *FAST])
    assert "no port given" in line


def test_mp4_cut_before_its_index(tmp_path, capsys, clip_with_audio):
    data = clip_with_audio.path.read_bytes()  # PyAV writes the index (moov) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    line = one_error_line(capsys, [str(cut), str(tmp_path / "o.mp4"), *FAST])
    assert line.startswith(f"error: cannot read {cut}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_connection_refused(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/clip.mp4"
    assert one_error_line(capsys, [url, str(tmp_path / "o.mp4"), *FAST]) == \
        f"error: cannot read {url}: Connection refused"


def test_protocol_this_ffmpeg_lacks(tmp_path, capsys):
    # the PyPI wheel has no libsrt; a build with it would wait for a listener instead
    argv = ["srt://127.0.0.1:9", str(tmp_path / "o.mp4"), "--timeout", "1", *FAST]
    code = main(argv)
    err = capsys.readouterr().err
    if "Protocol not found" not in err:
        pytest.skip("this PyAV has srt")
    assert code == 2
    assert err.strip() == ("error: cannot read srt://127.0.0.1:9: Protocol not found "
                           "(this FFmpeg build has no srt support)")


def test_second_video_stream_is_named_in_a_warning(tmp_path, capsys, caplog):
    import av

    src = tmp_path / "two.mkv"
    frames = random_frames(3, 16, 16)
    with av.open(str(src), "w") as c:
        streams = [c.add_stream("ffv1", rate=25) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 16, 16, "yuv444p"
        for i, img in enumerate(frames):
            for s in streams:
                vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")
                vf.pts = i
                c.mux(s.encode(vf))
        for s in streams:
            c.mux(s.encode(None))
    out = tmp_path / "o.mkv"
    assert main([str(src), str(out), "--codec", "ffv1", *FAST]) == 0
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{src}: 2 video streams; #0 is denoised, #1 left out (--video-stream N picks another)"]
    assert len(read_video(out)["frames"]) == 3
    caplog.clear()
    assert main([str(src), str(tmp_path / "p.mkv"), "--video-stream", "1", *FAST]) == 0
    assert "#1 is denoised, #0 left out" in caplog.records[0].getMessage()
    assert one_error_line(capsys, [str(src), str(tmp_path / "q.mkv"), "--video-stream", "2",
                                   *FAST]) == f"error: --video-stream 2: {src} has 2 video " \
        "streams (0..1)"


def test_an_leaves_the_audio_out(tmp_path, clip_with_audio):
    out = tmp_path / "o.mp4"
    assert main([str(clip_with_audio.path), str(out), "--an", *FAST]) == 0
    res = read_video(out)
    assert len(res["frames"]) == 12 and res["audio"] == []


@pytest.mark.parametrize("fmt, expect", [("yuv444p", "yuv444p"), ("yuv422p", "yuv422p"),
                                         ("yuv420p", "yuv420p")])
def test_chroma_layout_kept(tmp_path, fmt, expect):
    import av

    src = write_clip(tmp_path / "c.mp4", random_frames(3, 32, 24), pix_fmt=fmt, audio=False)
    out = tmp_path / "o.mp4"
    assert main([str(src.path), str(out), *FAST]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == expect


def test_threads_option(tmp_path, clip_with_audio, capsys):
    out = tmp_path / "o.mp4"
    assert main([str(clip_with_audio.path), str(out), "--threads", "1", *FAST]) == 0
    assert len(read_video(out)["frames"]) == 12
    assert "--threads: expected an integer in 1..256, got '0'" in one_error_line(
        capsys, [str(clip_with_audio.path), str(tmp_path / "p.mp4"), "--threads", "0", *FAST])


def test_bitrate_gop_and_encoder_options(tmp_path):
    import av

    src = write_clip(tmp_path / "c.mp4", random_frames(40, 64, 48), audio=False)
    plain, tuned = tmp_path / "plain.mp4", tmp_path / "tuned.mp4"
    assert main([str(src.path), str(plain), *FAST]) == 0
    assert main([str(src.path), str(tuned), "--bitrate", "50k", "--gop", "8",
                 "--encoder-opt", "x264-params=bframes=0:scenecut=0", *FAST]) == 0
    with av.open(str(tuned)) as c:
        assert c.streams.video[0].codec_context.has_b_frames == 0
        keys = [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]
    assert keys == list(range(0, 40, 8))
    # 50 kbit/s over 1.6 s is 10 kB (11.9 kB with the container here); crf 18 gave 43 kB
    assert tuned.stat().st_size < 16_000 < plain.stat().st_size


@pytest.mark.parametrize("args, words", [
    (["--bitrate", "x"], "--bitrate: expected bits per second"),
    (["--bitrate", "12"], "--bitrate: expected bits per second"),
    (["--gop", "0"], "--gop: expected an integer in 1..10000"),
    (["--encoder-opt", "novalue"], "--encoder-opt: expected KEY=VALUE"),
])
def test_bad_encoder_options(tmp_path, capsys, clip_with_audio, args, words):
    assert words in one_error_line(capsys, [str(clip_with_audio.path), str(tmp_path / "o.mp4"),
                                            *args, *FAST])


def test_crf_range_follows_the_codec_the_container_picks(tmp_path, clip_with_audio):
    out = tmp_path / "o.webm"  # .webm cannot hold H.264: VP9, whose crf goes to 63
    assert main([str(clip_with_audio.path), str(out), "--crf", "60", *FAST]) == 0
    assert len(read_video(out)["frames"]) == 12


def test_engine_error_mid_run_is_one_line(tmp_path, capsys, monkeypatch, clip_with_audio):
    from engines.base import EngineError
    from stream import session

    class Refusing:
        name = model = "refusing"
        temporal = False

        def infer(self, frames, sigma, prev=None):
            raise EngineError("1920x1080 batch 1 is outside the TensorRT profile 128x128..")

        def close(self) -> None:
            pass

    monkeypatch.setattr(session, "open_engine", lambda opts: Refusing())
    line = one_error_line(capsys, [str(clip_with_audio.path), str(tmp_path / "o.mp4"), *FAST])
    assert line == "error: 1920x1080 batch 1 is outside the TensorRT profile 128x128.."
    assert list(tmp_path.iterdir()) == []

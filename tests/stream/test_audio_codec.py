"""Issue 12: --audio-codec re-encodes the audio (e.g. AAC into .webm, which cannot hold it)."""
from __future__ import annotations

import av
import pytest
from conftest import add_noise, moving_scene, write_clip

from stream.cli import main

FAST = ["--model", "fast", "--backend", "torch", "--device", "cpu", "--quiet", "--sigma", "5",
        "--temporal", "off"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "c.mp4"  # 50 frames, 2 s, AAC mono 48 kHz
    return write_clip(path, add_noise(moving_scene(50, 32, 24), 5), audio=True)


def audio_seconds(path) -> tuple[str, float, int]:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        return a.codec_context.codec.canonical_name, samples / a.codec_context.sample_rate, len(
            c.streams.audio)


@pytest.mark.parametrize("name, codec, out", [("opus", "opus", "o.webm"),
                                              ("mp3", "mp3", "o.mkv"),
                                              ("flac", "flac", "o.mkv")])
def test_audio_reencoded(clip, tmp_path, name, codec, out):
    assert main([str(clip.path), str(tmp_path / out), "--audio-codec", name, *FAST]) == 0
    got, seconds, n = audio_seconds(tmp_path / out)
    assert got == codec and n == 1
    assert abs(seconds - 2.0) < 0.1  # as long as the source's (encoder padding aside)


def test_audio_reencoded_for_part_of_the_input(clip, tmp_path):
    out = tmp_path / "o.webm"
    assert main([str(clip.path), str(out), "--audio-codec", "opus", "--start", "0.4",
                 "--duration", "1", *FAST]) == 0
    assert abs(audio_seconds(out)[1] - 1.0) < 0.1


@pytest.mark.parametrize("args, words", [
    (["--audio-codec", "nosuch"], "--audio-codec: unknown encoder 'nosuch'"),
    (["--audio-codec", "h264"], "--audio-codec: 'h264' is not an audio codec"),
])
def test_bad_audio_codec(clip, tmp_path, capsys, args, words):
    assert main([str(clip.path), str(tmp_path / "o.mkv"), *args, *FAST]) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_audio_codec_the_container_cannot_hold(clip, tmp_path, capsys):
    assert main([str(clip.path), str(tmp_path / "o.webm"), "--audio-codec", "aac", *FAST]) == 2
    assert "--audio-codec aac cannot be stored in" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

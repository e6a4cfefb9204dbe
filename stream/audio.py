"""``--audio-codec``: re-encode the input's audio for a file output (by default audio packets
are copied unchanged, see avsink.py).  One transcoder per audio stream and output: its own
decoder (several outputs may re-encode the same stream), a resampler to what the encoder
takes, and timestamps counted in samples from the first packet's time.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

from .errors import UserError

AUDIO_ALIASES = {"opus": "libopus", "mp3": "libmp3lame", "vorbis": "libvorbis"}


def resolve_audio_codec(name: str) -> av.Codec:
    """An audio encoder by name or alias; UserError naming the choices when unknown."""
    name = AUDIO_ALIASES.get(name.lower(), name)
    try:
        codec = av.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for unknown names
        raise UserError(f"--audio-codec: unknown encoder {name!r}; try aac, opus, mp3, flac, "
                        "pcm_s16le") from None
    if codec.type != "audio":
        raise UserError(f"--audio-codec: {name!r} is not an audio codec")
    return codec


def _nearest(rate: int, rates: list[int] | None) -> int:
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (abs(r - rate), -r))


class AudioTranscoder:
    """Packets of one input audio stream in, packets of ``out`` (added to ``container``) out."""

    def __init__(self, container: Any, codec: av.Codec, source_stream: Any) -> None:
        src = source_stream.codec_context
        self.decoder = av.CodecContext.create(src.name, "r")
        if src.extradata:
            self.decoder.extradata = src.extradata
        self.decoder.sample_rate = src.sample_rate
        self.decoder.layout = src.layout
        self.rate = _nearest(src.sample_rate, list(codec.audio_rates or []))
        self.out = container.add_stream(codec.name, rate=self.rate)
        layout = src.layout.name if src.layout.nb_channels <= 2 else "stereo"
        self.out.codec_context.layout = layout
        fmt = (codec.audio_formats or [None])[0]
        if fmt is not None:
            self.out.codec_context.format = fmt.name
        self.out.time_base = Fraction(1, self.rate)
        self.resampler = av.AudioResampler(format=fmt.name if fmt else None, layout=layout,
                                           rate=self.rate)
        self.samples: int | None = None  # next output pts, in samples

    def push(self, packet: Any) -> list[Any]:
        """Decode ``packet`` and return the encoded packets ready to mux."""
        if self.samples is None:
            ts = packet.pts if packet.pts is not None else packet.dts
            start = float(ts * packet.time_base) if ts is not None and packet.time_base else 0.0
            self.samples = max(0, round(start * self.rate))
        try:
            frames = self.decoder.decode(packet)
        except av.error.InvalidDataError:
            return []  # a damaged packet: a short gap, as a player would make
        return self._encode(frames)

    def flush(self) -> list[Any]:
        try:
            frames = self.decoder.decode(None)
        except av.error.FFmpegError:
            frames = []
        packets = self._encode(frames)
        packets += self._encode_resampled(self.resampler.resample(None))
        return packets + list(self.out.encode(None))

    def _encode(self, frames: list[Any]) -> list[Any]:
        packets: list[Any] = []
        for frame in frames:
            frame.pts = None  # timing is counted here, in samples
            packets += self._encode_resampled(self.resampler.resample(frame))
        return packets

    def _encode_resampled(self, frames: list[Any]) -> list[Any]:
        packets: list[Any] = []
        for frame in frames:
            frame.pts = self.samples or 0
            frame.time_base = Fraction(1, self.rate)
            self.samples = (self.samples or 0) + frame.samples
            packets += self.out.encode(frame)
        return packets

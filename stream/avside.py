"""The source's audio and subtitle streams in an output (``stream.avsink``): copied unchanged,
or audio re-encoded with ``--audio-codec`` (``stream.audio``), their packets muxed in time
order with the video the sink encodes.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any

import av

from .avutil import av_message

log = logging.getLogger("stream.avsink")


class SideStreams:
    """The side streams of one output ``container`` (``spec``: its name in messages);
    ``packets``: the source's side packets in read order (None: none to carry)."""

    def __init__(self, container: Any, spec: str, audio_codec: av.Codec | None,
                 packets: deque | None) -> None:
        self.container, self.spec, self.audio_codec, self.packets = container, spec, audio_codec, packets
        self.copies: dict[int, Any] = {}  # input stream index -> output stream
        self.transcoders: dict[int, Any] = {}  # input stream index -> audio.AudioTranscoder

    def add(self, streams: list[Any]) -> None:
        """Output streams for the source's ``streams`` (its ``copy_streams``); one that cannot
        be stored or copied is left out with a warning."""
        supported = self.container.supported_codecs
        if self.container.format.name == "mpegts":
            supported = set()  # its codec query is incomplete (no AAC, H.264): let it try
        for s in streams:
            if s.codec_context is None:  # a codec this FFmpeg does not know: cannot be muxed
                log.warning("%s stream #%d has a codec unknown to this FFmpeg; it is left out",
                            s.type, s.index)
                continue
            if s.type == "audio" and self.audio_codec is not None:
                from .audio import AudioTranscoder

                try:
                    self.transcoders[s.index] = AudioTranscoder(self.container,
                                                                self.audio_codec, s)
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("audio stream #%d (%s) cannot be re-encoded as %s: %s; it is "
                                "left out", s.index, s.codec_context.name,
                                self.audio_codec.name, av_message(exc))
                continue
            name = s.codec_context.name
            if supported and name not in supported:
                log.warning("%s stream #%d (%s) cannot be stored in %s; it is left out",
                            s.type, s.index, name, self.spec)
                continue
            try:
                self.copies[s.index] = self.container.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("%s stream #%d (%s) cannot be copied: %s", s.type, s.index, name,
                            av_message(exc))

    def mux(self, until: float | None) -> None:
        """Mux queued audio/subtitle packets up to ``until`` seconds (None: all)."""
        side = self.packets
        while side:
            packet = side[0]
            ts = packet.pts if packet.pts is not None else packet.dts
            if until is not None and ts is not None and packet.time_base is not None \
                    and float(ts * packet.time_base) > until:
                return
            side.popleft()
            transcoder = self.transcoders.get(packet.stream.index)
            if transcoder is not None:
                self.container.mux(transcoder.push(packet))
                continue
            out = self.copies.get(packet.stream.index)
            if out is None:
                continue
            packet.stream = out
            self.container.mux(packet)

    def flush(self) -> None:
        """The re-encoded audio's last packets (after ``mux(until=...)``)."""
        for transcoder in self.transcoders.values():
            self.container.mux(transcoder.flush())

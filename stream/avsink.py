"""Encode frames with PyAV: video files, network streams (MPEG-TS), Y4M on stdout.

A file is written under a temporary name in its folder (``.NAME.partial-PID-XXXX.EXT``) and
renamed into place when finalised, also after Ctrl-C/SIGTERM; a run that fails removes it, so
an output is either absent, as it was, or one complete file from one run (two runs writing the
same name with ``-y`` at once cannot mix).

Timestamps are kept exactly (the encoder works in the input's time base), the size is kept
(odd sizes encode as 4:4:4 where the codec needs even 4:2:0), rotation and colour tags are
copied, and audio/subtitle packets from the source are muxed unchanged, interleaved by time
(``stream.avside``).
"""
from __future__ import annotations

import logging
import os
import secrets
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .avside import SideStreams
from .avutil import ColorInfo, av_message, rgb_to_frame
from .base import Sink, Source
from .errors import UserError
from .frame import Frame
from .options import EncodeOptions
from .pixfmt import (
    check_encoder_options,
    choose_pix_fmt,
    format_bits,
    hi_pix_fmt,
    rgb48_to_frame,
)
from .urls import is_url

log = logging.getLogger(__name__)

CODEC_ALIASES = {"h265": "hevc", "x264": "libx264", "x265": "libx265", "vp9": "libvpx-vp9",
                 "av1": "libsvtav1"}
CRF_CODECS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1"}
NETWORK_FORMATS = {"udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts",
                   "rtmp": "flv", "rtmps": "flv"}
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18
DEFAULT_PRESET = "fast"
LIVE_PRESET = "veryfast"  # a live run's, and a network stream's


def resolve_codec(name: str) -> av.Codec:
    """An encoder by name or alias; UserError listing the fix when unknown."""
    name = CODEC_ALIASES.get(name.lower(), name)
    try:
        codec = av.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for unknown names
        raise UserError(f"unknown codec {name!r}; try h264, hevc, ffv1, vp9, mpeg4") from None
    if codec.type != "video":
        raise UserError(f"codec {name!r} is not a video codec")
    return codec


def partial_path(final: Path) -> Path:
    """A hidden name beside ``final`` with the same suffix (the muxer goes by the suffix)."""
    return final.with_name(f".{final.stem}.partial-{os.getpid()}-{secrets.token_hex(3)}"
                           f"{final.suffix}")


class AVSink(Sink):
    """A file (format from the suffix), a URL (``udp://``, ``srt://``: MPEG-TS) or ``-``."""

    def __init__(self, spec: str, opts: EncodeOptions | None, source: Source | None) -> None:
        super().__init__(spec)
        opts = opts or EncodeOptions()
        self.spec = spec
        self.source = source
        self.codec = resolve_codec(opts.codec or
                                   ("wrapped_avframe" if spec == "-" else DEFAULT_CODEC))
        self.crf = opts.crf
        self.preset = opts.preset
        self.pix_fmt_wanted = opts.pix_fmt
        self.fps = opts.fps
        self.bitrate: int | None = opts.bitrate
        self.gop: int | None = opts.gop
        self.encoder_opts: dict[str, str] = dict(opts.encoder_opts)
        self.audio_codec: av.Codec | None = None
        if opts.audio_codec:
            from .audio import resolve_audio_codec

            self.audio_codec = resolve_audio_codec(opts.audio_codec)
        self.network = is_url(spec)
        self.stdout = spec == "-"
        self.final: Path | None = None  # a file output: where it goes when finalised
        self.partial: Path | None = None  # ... and where it is written until then
        if self.network:
            from .urls import check_url

            check_url(spec)
        if self.stdout and sys.stdout.isatty():
            raise UserError("refusing to write video to a terminal; pipe it, e.g. "
                            "python -m stream in.mp4 - | ffplay -")
        try:
            if self.stdout:
                self.container = av.open(sys.stdout.buffer, "w", format="yuv4mpegpipe")
            elif self.network:
                scheme = spec.split("://", 1)[0].lower()
                self.container = av.open(spec, "w", format=NETWORK_FORMATS.get(scheme))
            else:
                final = Path(spec)
                # A link keeps pointing where it did: the file it names is replaced.
                self.final = final.resolve() if final.is_symlink() else final
                self.partial = partial_path(self.final)
                if self.final.exists() and not os.access(self.final, os.W_OK):
                    raise PermissionError(13, "Permission denied")
                with open(self.partial, "xb"):  # fail now, not at the first frame, if unwritable
                    pass
                options = {}
                if final.suffix.lower() in (".mkv", ".mka", ".webm", ".mk3d"):
                    # Matroska stores negative times (AAC priming); shifting every stream
                    # to make them non-negative would move the video's timestamps.
                    options["avoid_negative_ts"] = "disabled"
                self.container = av.open(str(self.partial), "w", options=options)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._remove_partial()
            raise UserError(f"cannot write {spec}: {av_message(exc)}") from None
        supported = self.container.supported_codecs
        if not opts.codec and supported and not self.stdout \
                and self.codec.canonical_name not in supported \
                and self.container.format.name != "mpegts":
            # e.g. .webm cannot hold H.264: use the container's own default (VP9 there)
            self.codec = resolve_codec(self.container.default_video_codec)
        # MPEG-TS answers the codec query for MPEG codecs only, yet carries H.264/HEVC fine.
        if supported and self.container.format.name != "mpegts" \
                and self.codec.name not in supported \
                and self.codec.canonical_name not in supported:
            self.container.close()
            self._remove_partial()
            raise UserError(f"codec {self.codec.name} cannot be stored in {spec}; "
                            "use another codec or container (e.g. .mkv)")
        try:  # the codec is settled (.webm changed it to VP9): its own ranges
            check_encoder_options(self.codec, self.crf, self.pix_fmt_wanted)
            ac = self.audio_codec
            if ac is not None and supported and self.container.format.name != "mpegts" \
                    and ac.name not in supported and ac.canonical_name not in supported:
                raise UserError(f"--audio-codec {ac.name} cannot be stored in {spec}; use "
                                "another audio codec or container (e.g. .mkv)")
        except UserError:
            self.discard()
            raise
        self.stream: Any = None
        self.side = SideStreams(self.container, spec, self.audio_codec,
                                source.add_side_reader() if source is not None and not self.stdout
                                else None)
        self.color = ColorInfo()
        self.size: tuple[int, int] | None = None
        self.time_base: Fraction | None = None
        self._last_pts: int | None = None
        self._last_time = 0.0
        self._frame_dur = 0.0
        self._resize_warned = False
        self.grey = False
        self.hi = False

    # -- setup on the first frame ----------------------------------------------------------
    def _open(self, frame: Frame) -> None:
        info = self.source.info if self.source is not None else None
        height, width = frame.image.shape[:2]
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps else (
            info.rate if info and info.rate else None)
        rate = rate or Fraction(25)
        if frame.pts is not None and frame.time_base is not None and not self.stdout:
            self.time_base = Fraction(frame.time_base)
        else:
            self.time_base = 1 / rate
        self.stream = self.container.add_stream(self.codec.name, rate=rate)
        self.stream.width, self.stream.height = width, height
        wanted = self.pix_fmt_wanted
        self.grey = bool(info is not None and info.grey)
        if self.grey and not wanted and "gray" in [f.name for f in self.codec.video_formats or []] \
                and not self.stdout:
            wanted = "gray"  # a grey input stays one channel (x264, x265, ffv1 take it)
        self.hi = False  # write more than 8 bits (see Source.hi_frames)
        if info is not None and info.bits > 8 and not self.grey and not self.stdout:
            if wanted:
                self.hi = format_bits(wanted) > 8
            else:
                wanted = hi_pix_fmt(self.codec, info.pix_fmt, odd=bool(width % 2 or height % 2))
                self.hi = wanted is not None
                if not self.hi:
                    log.warning("codec %s takes no format of more than 8 bits; %s is written "
                                "with 8", self.codec.name, self.spec)
        if self.stdout and not wanted:  # Y4M: 4:2:0 plays everywhere; odd sizes need 4:4:4
            wanted = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        self.stream.pix_fmt = choose_pix_fmt(self.codec, width, height, wanted,
                                             info.pix_fmt if info is not None else None)
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        cc = self.stream.codec_context
        if info is not None:
            self.color = info.color
            if self.stream.pix_fmt.startswith("yuv"):
                cc.color_range = 2 if self.color.full_range else 1
                for attr in ("colorspace", "color_primaries", "color_trc"):
                    value = getattr(self.color, attr)
                    if value not in (0, 2):
                        setattr(cc, attr, value)
            if info.rotation and not self.stdout and not self.network:
                self.stream.set_display_rotation(info.rotation)
        options: dict[str, str] = {}
        if self.codec.name in CRF_CODECS:
            options["crf"] = str(self.crf if self.crf is not None else DEFAULT_CRF)
            if self.codec.name == "libvpx-vp9":
                options["b"] = "0"
        elif self.crf is not None:
            log.warning("--crf is ignored by codec %s", self.codec.name)
        if self.codec.name in ("libx264", "libx265"):
            # a live run (a camera, a stream, --realtime) encodes as it goes, on the cores the
            # denoiser needs: x264's veryfast there, as OBS records (at 640x360 on 2 cores
            # "fast" took 30 to 40 ms of the 40 a frame has, veryfast 18 to 22)
            live = self.network or bool(getattr(self.source, "live", False))
            options["preset"] = self.preset or (LIVE_PRESET if live else DEFAULT_PRESET)
            if self.network:
                options["tune"] = "zerolatency"
        if self.bitrate:  # a target bitrate replaces constant quality
            options.pop("crf", None)
            options.pop("b", None)
            cc.bit_rate = self.bitrate
        if self.gop:
            cc.gop_size = self.gop
        options.update(self.encoder_opts)  # --encoder-opt KEY=VALUE: last word to the user
        cc.options = options
        if info is not None and not self.stdout:
            self.side.add(info.copy_streams)
        self.size = (height, width)
        self._frame_dur = float(1 / rate)

    # -- per frame ---------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        try:
            self._write(frame)
        except (av.error.FFmpegError, OSError) as exc:
            hint = ""
            if self.network and "Protocol not found" in str(exc):
                hint = f" (this FFmpeg build has no {self.spec.split(':', 1)[0]} support)"
            kept = "; nothing was written" if self.final else ""
            raise UserError(f"cannot write {self.spec}: {av_message(exc)}{hint}{kept}") from None

    def _write(self, frame: Frame) -> None:
        if self.stream is None:
            self._open(frame)
        image = frame.image
        if image.shape[:2] != self.size:
            import cv2

            if not self._resize_warned:
                log.warning("frame size changed to %dx%d; scaling to %dx%d for %s",
                            image.shape[1], image.shape[0], self.size[1], self.size[0],
                            self.spec)
                self._resize_warned = True
            image = cv2.resize(image, (self.size[1], self.size[0]),
                               interpolation=cv2.INTER_AREA)
        if self.grey:  # denoised as colour; the mean of the channels is the grey picture
            grey = np.round(image.mean(axis=2, dtype=np.float32)).astype(np.uint8)
            if self.stream.pix_fmt == "gray":
                vf = av.VideoFrame.from_ndarray(grey, format="gray")
                vf.color_range = self.color.color_range  # as the input said (or unspecified)
            else:
                vf = rgb_to_frame(np.repeat(grey[..., None], 3, axis=2), self.stream.pix_fmt,
                                  self.color)
        elif self.hi:
            vf = rgb48_to_frame(self._hi_image(frame, image), self.stream.pix_fmt, self.color)
        else:
            vf = rgb_to_frame(image, self.stream.pix_fmt, self.color)
        if self.time_base == frame.time_base and frame.pts is not None:
            pts = frame.pts
        else:
            pts = self.frames_written
        if self._last_pts is not None and pts <= self._last_pts:
            log.warning("non-increasing timestamp %d after %d; shifted", pts, self._last_pts)
            pts = self._last_pts + 1
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = self.time_base
        now = float(pts * self.time_base)
        if self.frames_written:
            self._frame_dur = max(0.0, now - self._last_time) or self._frame_dur
        self._last_time = now
        self.side.mux(until=now)
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames_written += 1

    def _hi_image(self, frame: Frame, image: np.ndarray) -> np.ndarray:
        """The denoised picture in 16 bits: the input's own 16-bit picture plus the change the
        denoiser made at 8 bits, so levels between 8-bit steps are kept, not rounded away."""
        source = getattr(self.source, "inner", None) or self.source
        hi = getattr(source, "hi_frames", {}).get(frame.index)
        original = frame.original
        if hi is None or original is None or hi.shape != image.shape \
                or original.shape != image.shape:
            return image.astype(np.uint16) * 257
        change = image.astype(np.int32) - original.astype(np.int32)
        return np.clip(hi.astype(np.int32) + change * 257, 0, 65535).astype(np.uint16)

    def close(self) -> None:
        """Finalise: flush the encoder, write the trailer, rename the file into place.  With
        no frame written there is nothing to keep (and an existing output stays as it was)."""
        if self.stream is None:
            self.discard()
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            complete = self.source is not None and self.source.finished and \
                self.frames_written >= getattr(self.source, "frames_read", 0)
            # An interrupted run keeps the sound up to the last frame written.
            self.side.mux(until=None if complete else self._last_time + self._frame_dur)
            self.side.flush()
            self.container.close()
            if self.partial is not None:
                os.replace(self.partial, self.final)
                self.partial = None
        except (av.error.FFmpegError, OSError) as exc:
            self.discard()
            raise UserError(f"cannot write {self.spec}: {av_message(exc)}"
                            + ("; nothing was written" if self.final else "")) from None
        except BaseException:
            self.discard()
            raise
        finally:
            if self.stdout:
                sys.stdout.flush()

    def discard(self) -> None:
        """After a failure: close without finalising; a file output's partial file goes."""
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.debug("closing %s: %s", self.spec, av_message(exc))
        self._remove_partial()

    def _remove_partial(self) -> None:
        if self.partial is not None:
            try:
                self.partial.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove the partial output %s: %s", self.partial,
                            exc.strerror or exc)
            self.partial = None

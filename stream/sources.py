"""Where frames come from: video files and URLs (PyAV), Y4M on stdin, single images, folders.

The interface is ``stream.base.Source``; ``stream.openers`` holds the table of every kind
(cameras too) and picks one by what a spec names.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .avutil import ColorInfo, av_message, frame_to_rgb
from .base import Source, SourceInfo
from .errors import UserError
from .frame import Frame
from .options import InputOptions
from .urls import DEFAULT_TIMEOUT, check_url, is_url, open_error, open_url

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def frame_to_rgb48(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """A decoded frame of more than 8 bits -> (H, W, 3) uint16 RGB (0..65535)."""
    if frame.format.name.startswith(("yuv", "nv", "p0", "p2", "p4", "y2")):
        return frame.to_ndarray(format="rgb48le", **color.sws_kwargs(encode=False))
    return frame.to_ndarray(format="rgb48le")


def rgb48_to_rgb24(hi: np.ndarray) -> np.ndarray:
    """uint16 0..65535 -> uint8 0..255, rounded (65535 / 255 = 257 exactly)."""
    return ((hi.astype(np.uint32) + 128) // 257).astype(np.uint8)


class AVSource(Source):
    """Any file or URL PyAV opens; ``-`` reads Y4M from stdin.  Decodes the first video stream."""

    def __init__(self, spec: str, opts: InputOptions | None = None) -> None:
        super().__init__(spec)
        self.spec = spec
        opts = opts or InputOptions()
        self.timeout = float(opts.timeout or DEFAULT_TIMEOUT)
        # --start/--duration, seconds: the part of the input to denoise (its timestamps then
        # count from the start, and copied audio/subtitles are cut and shifted to match)
        self.start = float(opts.start or 0.0)
        self.duration: float | None = opts.duration
        try:
            if spec == "-":
                from .y4m import EXAMPLE, open_checked

                if sys.stdin.isatty():
                    raise UserError(f"- reads Y4M from stdin, but stdin is a terminal; pipe "
                                    f"a stream into it, {EXAMPLE}")

                stdin = open_checked(sys.stdin.buffer)
                try:
                    self.container = av.open(stdin, format="yuv4mpegpipe",
                                             metadata_errors="replace")
                except (av.error.FFmpegError, OSError) as exc:
                    header = stdin.header.decode("ascii", "replace").strip()
                    raise UserError(f"cannot read stdin: FFmpeg refused its Y4M header "
                                    f"{header!r} ({av_message(exc)})") from None
            elif is_url(spec):
                check_url(spec)
                self.container = open_url(spec, self.timeout)
            else:
                # Damaged files carry metadata that is not UTF-8: shown replaced, not fatal.
                self.container = av.open(spec, metadata_errors="replace")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise open_error(spec, exc, self.timeout) from None
        # Cover art (an attached picture) is a video stream too, but not the video.
        moving = [s for s in self.container.streams.video
                  if not int(s.disposition) & int(av.stream.Disposition.attached_pic)]
        if not moving:
            self.container.close()
            raise UserError(f"{spec} has no video stream")
        pick = opts.video_stream
        if pick is not None and pick >= len(moving):
            self.container.close()
            raise UserError(f"--video-stream {pick}: {spec} has {len(moving)} video "
                            f"stream{'s' if len(moving) > 1 else ''} (0..{len(moving) - 1})")
        self.stream = moving[pick or 0]
        if len(moving) > 1:
            others = ", ".join(f"#{s.index}" for s in moving if s is not self.stream)
            log.warning("%s: %d video streams; #%d is denoised, %s left out "
                        "(--video-stream N picks another)", spec, len(moving),
                        self.stream.index, others)
        self.stream.thread_type = "AUTO"
        self._last_time: float | None = None  # presentation time of the last decoded frame
        self._shape: tuple[int, ...] | None = None
        self._sequence = 0
        cc = self.stream.codec_context
        if cc is None:  # a codec this FFmpeg does not know (or a damaged header naming one)
            self.container.close()
            raise UserError(f"cannot read {spec}: its video codec is unknown to this FFmpeg "
                            "(damaged header or an unsupported codec)")
        if cc.width <= 0 or cc.height <= 0:
            self.container.close()
            raise UserError(f"cannot read {spec}: the video stream has no picture size")
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        copied = ("subtitle",) if opts.no_audio else ("audio", "subtitle")
        self.info = SourceInfo(
            width=cc.width, height=cc.height,
            rate=Fraction(rate) if rate else None,
            time_base=Fraction(self.stream.time_base) if self.stream.time_base else None,
            frames=self.stream.frames or None,
            color=ColorInfo(int(cc.color_range), int(cc.colorspace),
                            int(cc.color_primaries), int(cc.color_trc)),
            copy_streams=[s for s in self.container.streams
                          if s.index != self.stream.index and s.type in copied],
        )

    def _window(self) -> tuple[float, float | None]:
        """--start/--duration as times in the input's timeline (which may not start at 0);
        seeks to the key frame before the start where the input allows."""
        origin = (self.container.start_time or 0) / 1e6
        begin = origin + self.start
        end = begin + self.duration if self.duration else None
        tb = self.info.time_base
        if self.start > 0 and tb and self.spec != "-":
            try:
                self.container.seek(int(begin / tb), stream=self.stream, backward=True)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                log.debug("cannot seek in %s (%s); decoding up to --start", self.spec, exc)
        return begin, end

    def _side_packet(self, packet: Any, begin: float, end: float | None) -> None:
        """Queue a copied stream's packet, cut and shifted to the --start/--duration window."""
        if packet.dts is None or not packet.size:
            return
        if self.start or end is not None:
            ts = packet.pts if packet.pts is not None else packet.dts
            ptb = packet.time_base
            if ptb is not None:
                t = float(ts * ptb)
                if t < begin - 1e-6 or (end is not None and t >= end - 1e-6):
                    return
                if self.start:
                    shift = round(Fraction(begin) / ptb)
                    packet.dts -= shift
                    if packet.pts is not None:
                        packet.pts -= shift
        self._push_side(packet)

    def frames(self) -> Iterator[Frame]:
        copy_ids = {s.index for s in self.info.copy_streams}
        streams = [self.stream, *self.info.copy_streams]
        index = 0
        errors = 0
        tb = self.info.time_base
        trimmed = bool(self.start or self.duration)
        begin, end = self._window() if trimmed else (0.0, None)
        shift = round(Fraction(begin) / tb) if self.start and tb else 0
        decoded_count = 0  # frames decoded, kept or not (time of frames without a pts)

        def wanted(vf: av.VideoFrame) -> int:
            """-1 before the window, 0 inside, 1 at its end."""
            nonlocal decoded_count
            decoded_count += 1
            if not trimmed:
                return 0
            if vf.pts is not None and tb is not None:
                t = float(vf.pts * tb)
            elif self.info.rate:
                t = begin - self.start + (decoded_count - 1) / float(self.info.rate)
            else:
                return 0
            if t < begin - 1e-6:
                return -1
            return 1 if end is not None and t >= end - 1e-6 else 0

        try:
            for packet in self.container.demux(streams):
                if packet.stream.index in copy_ids:
                    self._side_packet(packet, begin, end)
                    continue
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as exc:
                    errors += 1
                    log.debug("undecodable packet at dts %s: %s", packet.dts, exc)
                    continue
                for vf in decoded:
                    where = wanted(vf)
                    if where > 0:
                        return  # the end of --duration: not "finished" (audio is cut there)
                    if where < 0:
                        continue
                    yield self._frame(vf, index, tb, shift)
                    index += 1
                    self.frames_read = index
        except av.error.ExitError:  # FFmpeg's interrupt callback: the read timeout ran out
            self.warnings.append(f"input ended early (nothing received for {self.timeout:g} s)")
        except (av.error.FFmpegError, OSError) as exc:
            self.warnings.append(f"input ended early ({av_message(exc)})")
        # the frames the decoder still holds, also when the input stopped early: a stream that
        # went silent lost its last 2 of 50 frames here before they were flushed
        try:
            tail = self.stream.decode(None)
        except (av.error.FFmpegError, OSError):
            tail = []
        for vf in tail:
            where = wanted(vf)
            if where > 0:
                return
            if where < 0:
                continue
            yield self._frame(vf, index, tb, shift)
            index += 1
            self.frames_read = index
        self.finished = True
        expected = self.info.frames
        if errors:
            self.warnings.append(f"{errors} packet(s) could not be decoded")
        if trimmed:
            return  # a part of the input: its frame count and end say nothing here
        if expected and index < expected:
            self.warnings.append(
                f"input truncated or damaged: decoded {index} of {expected} frames")
        elif not expected and not is_url(self.spec) and self.spec != "-":
            self._check_duration(index)

    def _check_duration(self, decoded: int) -> None:
        """Containers without a frame count (mkv, ts): compare the end time with the header's."""
        duration = self.container.duration  # microseconds, from the header; None if unknown
        rate = self.info.rate
        if not duration or not rate or self._last_time is None:
            return
        start = (self.container.start_time or 0) / 1e6
        total = duration / 1e6
        ended = self._last_time - start + float(1 / rate)
        if ended < total - 2.5 * float(1 / rate):
            self.warnings.append(f"input truncated or damaged: decoded {decoded} frames, "
                                 f"{ended:.2f} s of {total:.2f} s")

    def _frame(self, vf: av.VideoFrame, index: int, tb: Fraction | None,
               shift: int = 0) -> Frame:
        if index == 0:
            # The display matrix arrives on decoded frames; file sinks open on the first
            # processed frame, after this is set.
            self.info.rotation = int(vf.rotation or 0)
            color = ColorInfo.of(vf)  # frames know better than the stream header
            if vf.format.name.startswith("yuvj"):  # JPEG-style formats are full range
                color.color_range = 2
            if color.color_range == 0:
                color.color_range = self.info.color.color_range
            self.info.color = color
            self.info.grey = vf.format.name.startswith(("gray", "ya"))
            self.info.pix_fmt = vf.format.name
            if vf.interlaced_frame:  # two fields a frame, shot 1/50 s apart: said, not changed
                log.warning("%s is interlaced: each frame is denoised as one picture, its two "
                            "fields combed together; deinterlace it first (ffmpeg -i IN -vf "
                            "bwdif -c:a copy OUT)", "stdin" if self.spec == "-" else self.spec)
            if not self.info.grey and not vf.format.name.startswith(("pal", "bayer")):
                self.info.bits = max((c.bits for c in vf.format.components), default=8)
        if self.info.bits > 8:
            hi = frame_to_rgb48(vf, self.info.color)
            image = rgb48_to_rgb24(hi)
            self._keep_hi(index, hi)
        else:
            image = frame_to_rgb(vf, self.info.color)
        pts = vf.pts - shift if vf.pts is not None else None
        if pts is None and self.info.rate:
            tb = 1 / self.info.rate
            pts = index
        if pts is not None and tb is not None:
            self._last_time = float(pts * tb)
        if self._shape is not None and image.shape != self._shape:
            self._sequence += 1  # a mid-stream size change: no temporal state carries over
        self._shape = image.shape
        return Frame(image=image, index=index, pts=pts, time_base=tb, sequence=self._sequence)

    def close(self) -> None:
        self.container.close()

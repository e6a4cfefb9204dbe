"""Training sequences for the recurrent denoiser, generated on the device that trains.

Every source frame is loaded once as uint8 into device memory; each batch of T-frame
sequences is then made there:

- from photos (CBSD432): a crop that follows a smooth random camera path (translation,
  zoom, rotation, each with a per-sequence rate and a little acceleration), warped with
  ``F.grid_sample``; a share of sequences is static (tripod / webcam) and some carry a
  pasted object (an elliptical patch of another photo) moving on its own path;
- from real clips (DAVIS ``bus``, ``bikes.mp4``): T consecutive frames (stride 1 or 2,
  forwards or backwards), one crop position for the whole window, random flips.

Noise is added by the trainer (``add_noise``): one setting per sequence, white Gaussian
(clipped and rounded to 8 bits like the frames the product receives), camera-like, or a
whole camera pipeline replayed with one camera per sequence (``models.noise.camera_isp``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import read_rgb, split_paths

log = logging.getLogger(__name__)

# DAVIS bus frames from this index on are held out for validation.
DAVIS_VAL_START = 60
# Real clips a run may train on (carphone never: it is the held-out still-camera clip).
CLIPS = ("davis-bus", "bikes")


@dataclass
class MotionConfig:
    static_prob: float = 0.2  # sequences with no camera motion at all
    object_prob: float = 0.5  # sequences with a pasted moving object
    max_speed: float = 8.0  # camera translation, pixels per frame (of the crop)
    max_zoom: float = 0.03  # log-scale change per frame
    max_rot: float = 0.02  # radians per frame
    max_obj_speed: float = 10.0
    clip_prob: float = 0.35  # share of sequences taken from real clips
    cut_prob: float = 0.08  # sequences that cut to another scene part-way (prev unrelated)


def read_video_cv2(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decode a video with OpenCV (the GPU machine has no PyAV). RGB uint8 frames."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while limit is None or len(frames) < limit:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames


def _stack(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)


class SequenceSource:
    """All training frames on ``device`` as uint8, and a batch generator."""

    def __init__(
        self,
        data: Path,
        device: torch.device,
        photo_limit: int | None = None,
        clip_limit: int | None = None,
        use_clips: bool = True,
        clips: list[str] | None = None,
    ) -> None:
        self.device = device
        paths = split_paths(data, "cbsd432")[:photo_limit]
        imgs = []
        for p in paths:
            im = read_rgb(p)
            if im.shape[0] > im.shape[1]:  # portrait -> landscape so all stack
                im = np.ascontiguousarray(im.transpose(1, 0, 2))
            imgs.append(im[:321, :481])
        self.photos = _stack(imgs, device)  # (N, 3, 321, 481) uint8
        self.data_list = [p.relative_to(data).as_posix() for p in paths]
        self.clips: list[torch.Tensor] = []  # each (F, 3, H, W) uint8
        clips = list(CLIPS) if clips is None else clips
        unknown = sorted(set(clips) - set(CLIPS))
        if unknown:
            raise ValueError(f"unknown clips {unknown}; expected some of {', '.join(CLIPS)}")
        if use_clips:
            bus = sorted((data / "video" / "davis-bus").glob("*.jpg"))[:DAVIS_VAL_START]
            if bus and "davis-bus" in clips:
                self.clips.append(_stack([read_rgb(p) for p in bus[:clip_limit]], device))
                self.data_list += [p.relative_to(data).as_posix() for p in bus[:clip_limit]]
            bikes = data / "video" / "bikes.mp4"
            if bikes.exists() and "bikes" in clips:
                frames = read_video_cv2(bikes, clip_limit)
                if frames:
                    self.clips.append(_stack(frames, device))
                    self.data_list.append(f"video/bikes.mp4 ({len(frames)} frames)")
        log.info(
            "training frames on %s: %d photos, clips %s",
            device, len(self.photos), [tuple(c.shape) for c in self.clips],
        )

    def batch(
        self, batch: int, frames: int, patch: int, gen: torch.Generator, motion: MotionConfig
    ) -> torch.Tensor:
        """Clean sequences (B, T, 3, P, P) float32 in [0, 1] on the device."""
        n_clip = round(batch * motion.clip_prob) if self.clips else 0
        parts = []
        if batch - n_clip:
            parts.append(self._photo_sequences(batch - n_clip, frames, patch, gen, motion))
        if n_clip:
            parts.append(self._clip_sequences(n_clip, frames, patch, gen))
        seq = torch.cat(parts)
        if motion.cut_prob > 0 and batch > 1 and frames > 1:
            # a cut: from frame k on, the frames of another sequence of the batch
            cut = self._rand(gen, batch) < motion.cut_prob
            k = 1 + (self._rand(gen, batch) * (frames - 1)).long()
            after = torch.arange(frames, device=self.device)[None] >= k[:, None]  # (B, T)
            swap = (cut[:, None] & after)[..., None, None, None]
            seq = torch.where(swap, seq.roll(1, 0), seq)
        return seq

    def _rand(self, gen: torch.Generator, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=gen.device).to(self.device)

    def _photo_sequences(
        self, b: int, t: int, p: int, gen: torch.Generator, m: MotionConfig
    ) -> torch.Tensor:
        n, _, h, w = self.photos.shape
        idx = (self._rand(gen, b) * n).long().clamp_max(n - 1)
        src = self.photos[idx].float() / 255  # (b, 3, h, w)
        u = lambda *s: self._rand(gen, *s) * 2 - 1  # uniform in [-1, 1]
        moving = (self._rand(gen, b, 1) >= m.static_prob).float()
        # per-sequence rates plus small per-frame jitter, integrated over time
        speed = m.max_speed * self._rand(gen, b, 1) ** 1.5
        ang = self._rand(gen, b, 1) * 2 * math.pi
        vel = torch.stack([speed * torch.cos(ang), speed * torch.sin(ang)], -1)  # (b, 1, 2)
        vel = vel + 0.15 * speed[..., None] * u(b, t, 2)
        pos = torch.cumsum(vel, 1) - vel[:, :1]  # (b, t, 2) pixels, starts at 0
        log_zoom = torch.cumsum(m.max_zoom * u(b, 1).expand(b, t), 1)
        rot = torch.cumsum(m.max_rot * u(b, 1).expand(b, t) * self._rand(gen, b, 1).lt(0.5), 1)
        pos, log_zoom, rot = pos * moving[..., None], log_zoom * moving, rot * moving
        scale = torch.exp(log_zoom - log_zoom.amax(1, keepdim=True).clamp_min(0))  # never > 1
        # the path's extent decides where it may start so the crop stays inside the photo
        half = p / 2 * math.sqrt(2)
        lo = half - pos.amin(1)  # (b, 2)
        hi = torch.tensor([w, h], device=self.device) - half - pos.amax(1)
        start = lo + (hi - lo).clamp_min(0) * self._rand(gen, b, 2)
        center = start[:, None] + pos  # (b, t, 2)
        grid = _affine_grid(center, scale, rot, p, w, h)  # (b*t, p, p, 2)
        src_t = src[:, None].expand(b, t, 3, h, w).reshape(b * t, 3, h, w)
        seq = F.grid_sample(src_t, grid, mode="bicubic", padding_mode="reflection",
                            align_corners=False).view(b, t, 3, p, p).clamp(0, 1)
        has_obj = self._rand(gen, b) < m.object_prob
        if has_obj.any():
            seq = self._paste_objects(seq, has_obj, gen, m)
        return seq

    def _paste_objects(
        self, seq: torch.Tensor, has_obj: torch.Tensor, gen: torch.Generator, m: MotionConfig
    ) -> torch.Tensor:
        b, t, _, p, _ = seq.shape
        n, _, h, w = self.photos.shape
        idx = (self._rand(gen, b) * n).long().clamp_max(n - 1)
        tex = self.photos[idx].float() / 255
        radius = p * (0.12 + 0.2 * self._rand(gen, b, 1, 2))  # (b, 1, 2) ellipse radii
        ang = self._rand(gen, b, 1) * 2 * math.pi
        speed = m.max_obj_speed * self._rand(gen, b, 1)
        vel = torch.stack([speed * torch.cos(ang), speed * torch.sin(ang)], -1)  # (b, 1, 2)
        steps = torch.arange(t, device=self.device, dtype=torch.float32)[None, :, None]
        start = p * (0.2 + 0.6 * self._rand(gen, b, 1, 2))
        centre = start + vel * (steps - (t - 1) / 2)  # (b, t, 2) in crop pixels
        tex_centre = torch.stack([w * (0.3 + 0.4 * self._rand(gen, b)),
                                  h * (0.3 + 0.4 * self._rand(gen, b))], -1)
        # texture moves with the object: crop pixel q shows texture at tex_centre + q - centre
        src_centre = tex_centre[:, None] - centre + p / 2
        grid = _affine_grid(src_centre, torch.ones(b, t, device=self.device),
                            torch.zeros(b, t, device=self.device), p, w, h)
        tex_t = tex[:, None].expand(b, t, 3, h, w).reshape(b * t, 3, h, w)
        obj = F.grid_sample(tex_t, grid, mode="bilinear", padding_mode="reflection",
                            align_corners=False).view(b, t, 3, p, p)
        ys, xs = torch.meshgrid(
            torch.arange(p, device=self.device, dtype=torch.float32) + 0.5,
            torch.arange(p, device=self.device, dtype=torch.float32) + 0.5, indexing="ij")
        dx = (xs - centre[..., 0, None, None]) / radius[..., 0, None, None]
        dy = (ys - centre[..., 1, None, None]) / radius[..., 1, None, None]
        mask = (1 - dx**2 - dy**2).mul(4).clamp(0, 1)  # soft edge, (b, t, p, p)
        mask = mask * has_obj[:, None, None, None].float()
        return seq * (1 - mask[:, :, None]) + obj * mask[:, :, None]

    def _clip_sequences(self, b: int, t: int, p: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        for _ in range(b):
            clip = self.clips[int(self._rand(gen, 1).item() * len(self.clips)) % len(self.clips)]
            f, _, h, w = clip.shape
            stride = 1 if self._rand(gen, 1).item() < 0.7 else 2
            span = (t - 1) * stride + 1
            stride = stride if span <= f else 1
            span = (t - 1) * stride + 1
            f0 = int(self._rand(gen, 1).item() * (f - span + 1))
            frames = torch.arange(f0, f0 + span, stride, device=self.device)
            if self._rand(gen, 1).item() < 0.5:
                frames = frames.flip(0)
            y0 = int(self._rand(gen, 1).item() * (h - p + 1))
            x0 = int(self._rand(gen, 1).item() * (w - p + 1))
            seq = clip[frames, :, y0:y0 + p, x0:x0 + p].float() / 255
            if self._rand(gen, 1).item() < 0.5:
                seq = seq.flip(-1)
            out.append(seq)
        return torch.stack(out)


def _affine_grid(
    center: torch.Tensor, scale: torch.Tensor, rot: torch.Tensor, p: int, w: int, h: int
) -> torch.Tensor:
    """Sampling grid (b*t, p, p, 2): crop pixel u (from the crop centre) reads source pixel
    ``center + scale * R(rot) u``.  center (b, t, 2) in source pixels; scale, rot (b, t)."""
    b, t = scale.shape
    c, s = torch.cos(rot) * scale, torch.sin(rot) * scale
    theta = torch.stack([
        torch.stack([c * p / w, -s * p / w, 2 * center[..., 0] / w - 1], -1),
        torch.stack([s * p / h, c * p / h, 2 * center[..., 1] / h - 1], -1),
    ], -2).view(b * t, 2, 3)
    return F.affine_grid(theta, [b * t, 3, p, p], align_corners=False)


def add_noise(
    clean: torch.Tensor, gen: torch.Generator, sigma_max: float = 55.0, camera: float = 0.25,
    isp: float = 0.0, jpeg_share: float = 0.5, map_max: float = 75.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy sequences and their noise maps (B, T, 1, P, P) in [0, 1] units.

    clean: (B, T, 3, P, P) in [0, 1].  One noise setting per sequence, fresh noise per frame.
    Most sequences get white Gaussian noise (sigma uniform in 0..sigma_max), clipped and
    rounded to 8 bits as the frames the product sees; a ``camera`` share gets the
    signal-dependent Bayer-demosaicked noise of ``models.noise.camera``; an ``isp`` share
    (the last sequences of the batch) gets a whole camera pipeline replayed
    (``models.noise.camera_isp``) with ONE camera per sequence (``sample_isp``), a
    ``jpeg_share`` of those sequences JPEG'd at one quality for all their frames.  Their noise
    map is the sequence's mean noise std (what a steady estimate reads), capped at ``map_max``.
    """
    from .. import noise

    b, t, c, h, w = clean.shape
    dev = clean.device
    n_isp = min(round(isp * b), b)
    n_cam = min(round(camera * b), b - n_isp)
    n_g = b - n_cam - n_isp
    flat = clean.reshape(b * t, c, h, w)
    sigma = torch.rand(n_g, generator=gen, device=gen.device).to(dev) * sigma_max / 255
    noisy_g, map_g = noise.gaussian(flat[: n_g * t], sigma.repeat_interleave(t), clip=True,
                                    generator=gen if gen.device == dev else None)
    outs, maps = [noisy_g], [map_g]
    if n_cam:
        s0 = n_g * t
        shot = 10 ** (torch.rand(n_cam, generator=gen, device=gen.device) * 2.3 - 4.0)
        read = 10 ** (torch.rand(n_cam, generator=gen, device=gen.device) * 1.6 - 3.2)
        noisy_c, map_c = noise.camera(flat[s0:s0 + n_cam * t], shot.to(dev).repeat_interleave(t),
                                      read.to(dev).repeat_interleave(t),
                                      generator=gen if gen.device == dev else None)
        outs.append(noisy_c)
        maps.append(map_c)
    if n_isp:
        # camera_isp draws on the CPU: a CPU generator, seeded from the run's own
        cpu_gen = gen if gen.device.type == "cpu" else torch.Generator().manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device)))
        for i in range(n_g + n_cam, b):
            cam = noise.sample_isp(cpu_gen)
            jpeg = float(torch.rand(1, generator=cpu_gen)) < jpeg_share
            q = int(torch.randint(50, 96, (1,), generator=cpu_gen))
            n_s, m_s = noise.camera_isp(clean[i].cpu(), cpu_gen, cams=[cam] * t,
                                        jpeg_share=1.0 if jpeg else 0.0, quality=q)
            level = m_s.mean().clamp_max(map_max / 255)
            outs.append(n_s.to(dev))
            maps.append(torch.full((t, 1, h, w), float(level), device=dev))
    noisy = torch.cat(outs).view(b, t, c, h, w)
    smap = torch.cat(maps).view(b, t, 1, h, w)
    return noisy, smap


def val_sequences(data: Path, device: torch.device, size: int = 256, windows: int = 2,
                  length: int = 10) -> torch.Tensor:
    """Held-out DAVIS bus windows (W, T, 3, size, size): frames from ``DAVIS_VAL_START``."""
    bus = sorted((data / "video" / "davis-bus").glob("*.jpg"))[DAVIS_VAL_START:]
    if len(bus) < length:
        raise FileNotFoundError(f"need {length} held-out DAVIS bus frames under {data}/video")
    frames = _stack([read_rgb(p) for p in bus], device).float() / 255  # (F, 3, 480, 854)
    f, _, h, w = frames.shape
    out = []
    for i in range(windows):
        f0 = (f - length) * i // max(windows - 1, 1)
        y0, x0 = (h - size) // 2, (w - size) * (i + 1) // (windows + 1)
        out.append(frames[f0:f0 + length, :, y0:y0 + size, x0:x0 + size])
    return torch.stack(out)

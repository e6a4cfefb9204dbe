"""Denoiser architectures: noise-map-conditioned residual U-Nets (FFDNet-style input).

Every network takes an RGB image in [0, 1] and a per-pixel noise map (the noise standard
deviation in the same [0, 1] units, i.e. sigma/255).  It predicts the noise (``residual``:
output = input - prediction) or the clean image; a ``gate`` model also predicts, per pixel,
how much of that prediction to take (output = input + g * (prediction - input), g in 0..1), so
a clean or lightly noisy input can pass through a narrow net untouched (``tail="convt"``: the
same idea as output = q + k * x, at a fraction of the cost).  Sizes that are not a
multiple of ``multiple`` are edge-padded inside ``forward`` and cropped back, so any frame
size works.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    unshuffle: int = 2  # pixel-unshuffle factor at the input
    widths: tuple[int, ...] = (32, 64, 128)  # channels per level
    blocks: tuple[int, ...] = (2, 2, 2)  # residual blocks per encoder level (decoder mirrors)
    head_kernel: int = 3
    temporal: bool = False  # also sees the previous output (recurrent)
    # Predict the noise and subtract it (True), or predict the clean image (False).  A narrow
    # net on 4x-unshuffled input cannot carry 48 white-noise values per cell through 20
    # channels, but it can carry the (compressible) clean signal.
    residual: bool = True
    # Also predict a per-pixel blend weight between the input and the prediction.
    gate: bool = False
    # The output stage.  "conv": a 3 x 3 conv on the cells to 3 r² (+ r² gate) channels, then
    # pixel-shuffle (and the gate's arithmetic, all at full resolution).  "convt": a 3 x 3 conv
    # on the cells to ``tail_width`` channels, then r x r stride-r transposed convs straight to
    # the full-resolution clean picture ``q`` and, with ``keep``, a per-pixel weight ``k`` on
    # the frame: output = q + k * x (``gate`` and ``residual`` unused).  The transposed conv
    # is the arithmetic of a 1 x 1 conv and pixel-shuffle in one pass, where ONNX Runtime runs
    # the conv's output stage as a conv, two depth-to-space copies, a layout reorder, a split
    # and four elementwise ops: at 720p as long as the rest of ``nano``.
    tail: str = "conv"
    tail_width: int = 0  # "convt": the 3 x 3 conv's output channels (0: the finest level's width)
    keep: int = 0  # "convt": channels of k (0: none, the picture is q; 1: one for all colours)


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class NoiseMapUNet(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        r, w = cfg.unshuffle, cfg.widths
        self.multiple = r * 2 ** (len(w) - 1)
        in_ch = 3 * r * r + 1 + (3 * r * r if cfg.temporal else 0)
        self.head = nn.Conv2d(in_ch, w[0], cfg.head_kernel, padding=cfg.head_kernel // 2)
        self.enc = nn.ModuleList(
            nn.Sequential(*[ResBlock(w[i]) for _ in range(cfg.blocks[i])]) for i in range(len(w))
        )
        self.down = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 2, stride=2) for i in range(len(w) - 1))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(len(w) - 1)
        )
        self.dec = nn.ModuleList(
            nn.Sequential(*[ResBlock(w[i]) for _ in range(cfg.blocks[i])])
            for i in range(len(w) - 1)
        )
        if cfg.tail == "convt":
            tw = cfg.tail_width or w[0]
            self.tail = nn.Conv2d(w[0], tw, 3, padding=1)
            self.tail_up = nn.ConvTranspose2d(tw, 3, r, stride=r)
            self.tail_keep = nn.ConvTranspose2d(tw, cfg.keep, r, stride=r) if cfg.keep else None
        elif cfg.tail == "conv":
            self.tail = nn.Conv2d(w[0], (4 if cfg.gate else 3) * r * r, 3, padding=1)
        else:
            raise ValueError(f"tail: 'conv' or 'convt', not {cfg.tail!r}")

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        # x: (B, 3, H, W) in [0, 1]; sigma: (B, 1, H, W) noise std in [0, 1] units
        # prev: (B, 3, H, W) previous output, temporal models only
        h, w = x.shape[-2:]
        inputs = self.padded([x, sigma] + ([x if prev is None else prev] if self.cfg.temporal else []))
        r = self.cfg.unshuffle
        feats = [F.pixel_unshuffle(inputs[0], r), F.avg_pool2d(inputs[1], r)]
        if self.cfg.temporal:
            feats.append(F.pixel_unshuffle(inputs[2], r))
        y = self.head(torch.cat(feats, dim=1))  # (B, w0, H/r, W/r)
        return self.output(inputs[0], self.trunk(y))[..., :h, :w]

    def padded(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The inputs edge-padded to a multiple of ``multiple`` (cropped back by ``forward``)."""
        h, w = inputs[0].shape[-2:]
        m = self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph or pw:
            return [F.pad(t, (0, pw, 0, ph), mode="replicate") for t in inputs]
        return inputs

    def trunk(self, y: torch.Tensor) -> torch.Tensor:
        """Head features (B, w0, H/r, W/r) -> the tail conv's output on the cells."""
        skips = []
        for i, enc in enumerate(self.enc):
            y = enc(y)
            if i < len(self.down):
                skips.append(y)
                y = self.down[i](F.relu(y))
        for i in reversed(range(len(self.dec))):
            y = self.dec[i](self.up[i](y) + skips[i])
        return self.tail(F.relu(y))

    def output(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The frame (B, 3, H, W) and the tail output -> the denoised frame (B, 3, H, W)."""
        r = self.cfg.unshuffle
        if self.cfg.tail == "convt":
            h = F.relu(t)
            q = self.tail_up(h)  # (B, 3, H, W)
            return q if self.tail_keep is None else q + self.tail_keep(h) * x
        pred = F.pixel_shuffle(t[:, : 3 * r * r], r)
        if not self.cfg.residual:
            pred = pred - x  # the change the net proposes
        if self.cfg.gate:
            pred = pred * torch.sigmoid(F.pixel_shuffle(t[:, 3 * r * r:], r))  # (B, 1, H, W)
        return x + pred if not self.cfg.residual else x - pred


# BT.601 full range, on [0, 1]: RGB -> (Y, Cb - 0.5, Cr - 0.5)
YUV = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
RGB = torch.linalg.inv(YUV)


class Yuv420UNet(NoiseMapUNet):
    """The same U-Net on the frame's YUV 4:2:0 cells: per r x r cell, r² luma values and
    (r/2)² of each chroma (the 2 x 2 means of Cb and Cr), 24 values instead of 48 at r = 4;
    out come luma at full resolution and chroma at half, each as ``q + k * input`` through
    stride-r and stride-r/2 transposed convs, and the chroma is upsampled (bilinear) before the
    conversion back to RGB.  Video arrives as 4:2:0 anyway; averaging the chroma halves its
    noise before the net sees it, and the output stage has half as many values a cell to
    carry, which is what a 16-channel stage cannot (``pico``).  The input side is linear up to
    the head and the conversions could be folded into it (as ``engines.export.FoldedStem``
    does for RGB); here they run as they are.  Takes and returns RGB like every model."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__(replace(cfg, tail="convt", keep=0))
        r, w0 = cfg.unshuffle, cfg.widths[0]
        if r % 2:
            raise ValueError("Yuv420UNet needs an even unshuffle factor")
        self.head = nn.Conv2d(r * r + 2 * (r // 2) ** 2 + 1, w0, cfg.head_kernel, padding=cfg.head_kernel // 2)
        tw = self.tail.out_channels
        del self.tail_up
        self.luma_up = nn.ConvTranspose2d(tw, 1, r, stride=r)
        self.luma_keep = nn.ConvTranspose2d(tw, 1, r, stride=r)
        self.chroma_up = nn.ConvTranspose2d(tw, 2, r // 2, stride=r // 2)
        self.chroma_keep = nn.ConvTranspose2d(tw, 2, r // 2, stride=r // 2)

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, sigma = self.padded([x, sigma])
        r, m = self.cfg.unshuffle, YUV.to(x)
        yuv = torch.einsum("ij,bjhw->bihw", m, x)
        luma, chroma = yuv[:, :1], F.avg_pool2d(yuv[:, 1:], 2)
        feats = [F.pixel_unshuffle(luma, r), F.pixel_unshuffle(chroma, r // 2), F.avg_pool2d(sigma, r)]
        t = F.relu(self.trunk(self.head(torch.cat(feats, 1))))
        luma = self.luma_up(t) + self.luma_keep(t) * luma
        chroma = self.chroma_up(t) + self.chroma_keep(t) * chroma
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
        out = torch.einsum("ij,bjhw->bihw", RGB.to(x), torch.cat([luma, chroma], 1))
        return out[..., :h, :w]


# ``run_half``'s detail step: white noise keeps this share of its std in the band the network
# never sees (the frame less its 2 x 2 means upsampled; measured on 640 x 360 of noise) ...
HIGH = 0.904
# ... and the grey frame this share of white RGB noise's (BT.601: sqrt(.299² + .587² + .114²));
# the band's energy is read over WINDOW x WINDOW pixels
LUMA = 0.668
WINDOW = 5
GREY = (0.299, 0.587, 0.114)


def run_half(net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
             sigma: torch.Tensor) -> torch.Tensor:
    """``net`` on the frame's 2 x 2 means, told half the map (white noise keeps half its std
    there), its output upsampled (bilinear) to the frame's size; then the finest brightness
    detail put back where it stands out of the noise: the grey frame less its 2 x 2 means
    upsampled, each pixel kept in the share 1 - noise / energy (an empirical Wiener gain, the
    energy over ``WINDOW`` x ``WINDOW`` pixels), added to the three channels.  H and W even.
    (``engines.half_scale`` computes the same with OpenCV on 8-bit frames.)"""
    small = F.avg_pool2d(x, 2)

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    y = up(net(small, F.avg_pool2d(sigma, 2) * 0.5))
    grey = torch.tensor(GREY, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    band = (x * grey).sum(dim=1, keepdim=True) - up((small * grey).sum(dim=1, keepdim=True))
    r = WINDOW // 2
    pad = "reflect" if min(band.shape[-2:]) > r else "replicate"  # reflect: OpenCV's border
    energy = F.avg_pool2d(F.pad(band * band, (r, r, r, r), mode=pad), WINDOW, stride=1)
    gain = (1 - (HIGH * LUMA * sigma) ** 2 / energy.clamp_min(1e-12)).clamp_min(0)
    return y + band * gain


class HalfScaleUNet(NoiseMapUNet):
    """The same network run at half resolution (``run_half``): a quarter of its cost, and the
    detail finer than two pixels only where it stands out of the noise.  A rung below the
    smallest network for frame sizes the CPU cannot denoise in full at the source's rate (720p
    live).  Its parameters are the network's own, so it loads that model's weights; the
    engines run that network on frames OpenCV halves and doubles (``engines.half_scale``),
    which this computes the same way in torch (the reference, and what counts its
    multiply-adds)."""

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, sigma = (F.pad(t, (0, w % 2, 0, h % 2), mode="replicate") for t in (x, sigma))
        return run_half(super().forward, x, sigma)[..., :h, :w]


class FusionUNet(NoiseMapUNet):
    """A recurrent twin of a per-frame net that averages its input with its previous output,
    per pixel, where a small branch finds that they agree.

    The branch reads the frame's and the previous output's cells (4 x 4 pixels for ``fast``)
    and the noise level: 1 x 1 conv -> ReLU -> 3 x 3 conv -> ReLU -> 1 x 1 conv, giving per
    pixel a weight ``a`` in 0..1 and per cell a factor ``b`` in 0..1.  The per-frame net then
    denoises ``x + a (prev - x)`` told the noise level times ``1 - b``: the previous output
    (aligned to the frame by the caller, ``models.align``) stands in for the noisy frame where
    it fits, as the mean of a still camera's inputs does for ``--temporal auto``, but learnt,
    along the motion, and from a denoised frame.  Both start near 0 (sigmoid(-4) = 0.018), so
    training starts close to the per-frame net; without a previous output the branch is
    skipped, so a first frame (or a still camera under ``switch``) gets exactly the per-frame
    net when only the branch was trained (``train_temporal --train-only fuse_``)."""

    def __init__(self, cfg: UNetConfig, branch: int = 24, wide: bool = False) -> None:
        super().__init__(replace(cfg, temporal=False))
        self.cfg = cfg
        r = cfg.unshuffle
        n = 3 * r * r
        self.fuse_in = nn.Conv2d(2 * n + 1, branch, 1)
        self.fuse_mid = nn.Conv2d(branch, branch, 3, padding=1)
        # ``wide``: a second 3 x 3, dilated by 2, so the branch sees 28 px instead of 12
        self.fuse_wide = nn.Conv2d(branch, branch, 3, padding=2, dilation=2) if wide else None
        self.fuse_out = nn.Conv2d(branch, r * r + 1, 1)
        nn.init.zeros_(self.fuse_out.weight)
        nn.init.constant_(self.fuse_out.bias, -4.0)

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        h, w = x.shape[-2:]
        inputs = self.padded([x, sigma] + ([] if prev is None else [prev]))
        r = self.cfg.unshuffle
        x_in, sc = inputs[0], F.avg_pool2d(inputs[1], r)
        if prev is not None:  # without one: exactly the per-frame net
            f = F.relu(self._cells(self.fuse_in, [x_in, inputs[2]], sc))
            f = F.relu(self.fuse_mid(f))
            if self.fuse_wide is not None:
                f = F.relu(self.fuse_wide(f))
            g = torch.sigmoid(self.fuse_out(f))
            a = F.pixel_shuffle(g[:, : r * r], r)  # (B, 1, H, W): per pixel
            x_in = x_in + a * (inputs[2] - x_in)
            sc = sc * (1 - g[:, r * r:])
        y = self._cells(self.head, [x_in], sc)
        return self.output(x_in, self.trunk(y))[..., :h, :w]

    def _cells(self, conv: nn.Conv2d, images: list[torch.Tensor], sc: torch.Tensor) -> torch.Tensor:
        """A 1 x 1 conv over the r x r cells of full-resolution ``images`` and the cells' noise
        level ``sc`` (its input channels in that order), as strided convolutions: the same
        arithmetic as on ``pixel_unshuffle``d input, which ONNX Runtime runs slowly."""
        r = self.cfg.unshuffle
        w = conv.weight[:, :, 0, 0]  # (O, 3 r² per image + 1)
        n = 3 * r * r
        out = F.conv2d(sc, w[:, -1:, None, None], conv.bias)
        for i, img in enumerate(images):
            out = out + F.conv2d(img, w[:, i * n:(i + 1) * n].reshape(-1, 3, r, r), stride=r)
        return out


def load_compatible(net: NoiseMapUNet, state: dict[str, torch.Tensor], gate_bias: float = 4.0) -> list[str]:
    """Load weights of a related model: a per-frame net into its recurrent twin (the head's
    extra input channels start at zero) or an ungated net into a gated one (the gate starts
    nearly open, sigmoid(``gate_bias``)), so training starts from the old net's output.
    Returns the names of the tensors that were extended."""
    own = net.state_dict()
    extended = []
    # a net with another output stage than the weights' starts that stage afresh (a "convt"
    # stage from a "conv" one: from its picture channels, ``convt_tail_from_conv``)
    fresh = ("tail.", "tail_up.", "tail_keep.") if ("tail_up.weight" in own) != ("tail_up.weight" in state) else ()
    if fresh and "tail_up.weight" in own:
        for name, value in convt_tail_from_conv(state["tail.weight"], state["tail.bias"], own).items():
            own[name].copy_(value)
    for name, value in state.items():
        if fresh and name.startswith(fresh):
            continue
        target = own[name]
        if target.shape == value.shape:
            target.copy_(value)
            continue
        if value.dim() != target.dim() or any(v > t for v, t in zip(value.shape, target.shape)):
            raise ValueError(f"{name}: cannot load {tuple(value.shape)} into {tuple(target.shape)}")
        target.zero_()
        target[tuple(slice(0, n) for n in value.shape)] = value
        if name == "tail.bias":
            target[value.shape[0]:] = gate_bias
        extended.append(name)
    # a fusion twin's branch keeps its initialisation (its last layer zero: the net as loaded)
    missing = {n for n in set(own) - set(state) if not n.startswith(("fuse_",) + fresh)}
    if missing:
        raise ValueError(f"weights lack {sorted(missing)}")
    net.load_state_dict(own)
    return extended


def convt_tail_from_conv(
    weight: torch.Tensor, bias: torch.Tensor, own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A "convt" output stage that starts close to a "conv" one's picture (its gate open).

    The conv's picture channels (3 r², a linear map of the cells' 3 x 3 features) are cut to
    their strongest ``tail_width // 2`` singular directions; each direction and its negative
    become one channel of the 3 x 3 conv, so relu(a) - relu(-a) passes it through the ReLU,
    and the transposed conv maps them back to the pixels.  The weight on the frame starts at
    zero (output = the picture).  Returns the new tail's tensors by name."""
    tw, r = own["tail.weight"].shape[0], own["tail_up.weight"].shape[-1]
    w = weight[: 3 * r * r].reshape(3 * r * r, -1)  # (3 r², w0 * 9)
    wb = torch.cat([w, bias[: 3 * r * r, None]], 1)  # the bias as one more input
    u, s, vh = torch.linalg.svd(wb.double(), full_matrices=False)
    k = min(tw // 2, s.numel())
    a = s[:k, None] * vh[:k]  # (k, w0 * 9 + 1)
    a, u = torch.cat([a, -a]), torch.cat([u[:, :k], -u[:, :k]], 1)  # (2k, .), (3 r², 2k)
    out = {name: torch.zeros_like(value) for name, value in own.items() if name.startswith("tail")}
    out["tail.weight"][: 2 * k] = a[:, :-1].reshape(2 * k, *own["tail.weight"].shape[1:]).float()
    out["tail.bias"][: 2 * k] = a[:, -1].float()
    # the transposed conv's (in, 3, r, r): input channel j adds u[c r² + i r + j', j] at (c, i, j')
    out["tail_up.weight"][: 2 * k] = u.T.reshape(2 * k, 3, r, r).float()
    return out


def count_macs(model: nn.Module, height: int = 1024, width: int = 1024) -> int:
    """Multiply-accumulates of one forward pass, counted from conv shapes with hooks."""
    total = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += inp[0].numel() // inp[0].shape[0] * mod.out_channels * k
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out.numel() // out.shape[0] * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, height, width)
            model(x, torch.zeros(1, 1, height, width))
    finally:
        for h in handles:
            h.remove()
    return total

"""Denoiser architectures: noise-map-conditioned residual U-Nets (FFDNet-style input).

Every network takes an RGB image in [0, 1] and a per-pixel noise map (the noise standard
deviation in the same [0, 1] units, i.e. sigma/255).  It predicts the noise (``residual``:
output = input - prediction) or the clean image; a ``gate`` model also predicts, per pixel,
how much of that prediction to take (output = input + g * (prediction - input), g in 0..1), so
a clean or lightly noisy input can pass through a narrow net untouched.  Sizes that are not a
multiple of ``multiple`` are edge-padded inside ``forward`` and cropped back, so any frame
size works.
"""
from __future__ import annotations

from dataclasses import dataclass

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
        self.tail = nn.Conv2d(w[0], (4 if cfg.gate else 3) * r * r, 3, padding=1)

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        # x: (B, 3, H, W) in [0, 1]; sigma: (B, 1, H, W) noise std in [0, 1] units
        # prev: (B, 3, H, W) previous output, temporal models only
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        inputs = [x, sigma] + ([x if prev is None else prev] if self.cfg.temporal else [])
        if ph or pw:
            inputs = [F.pad(t, (0, pw, 0, ph), mode="replicate") for t in inputs]
        r = self.cfg.unshuffle
        feats = [F.pixel_unshuffle(inputs[0], r), F.avg_pool2d(inputs[1], r)]
        if self.cfg.temporal:
            feats.append(F.pixel_unshuffle(inputs[2], r))
        y = self.head(torch.cat(feats, dim=1))  # (B, w0, H/r, W/r)
        return self.output(inputs[0], self.trunk(y))[..., :h, :w]

    def trunk(self, y: torch.Tensor) -> torch.Tensor:
        """Head features (B, w0, H/r, W/r) -> tail output (B, (3|4) r², H/r, W/r)."""
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
        pred = F.pixel_shuffle(t[:, : 3 * r * r], r)
        if not self.cfg.residual:
            pred = pred - x  # the change the net proposes
        if self.cfg.gate:
            pred = pred * torch.sigmoid(F.pixel_shuffle(t[:, 3 * r * r:], r))  # (B, 1, H, W)
        return x + pred if not self.cfg.residual else x - pred


def load_compatible(net: NoiseMapUNet, state: dict[str, torch.Tensor], gate_bias: float = 4.0) -> list[str]:
    """Load weights of a related model: a per-frame net into its recurrent twin (the head's
    extra input channels start at zero) or an ungated net into a gated one (the gate starts
    nearly open, sigmoid(``gate_bias``)), so training starts from the old net's output.
    Returns the names of the tensors that were extended."""
    own = net.state_dict()
    extended = []
    for name, value in state.items():
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
    missing = set(own) - set(state)
    if missing:
        raise ValueError(f"weights lack {sorted(missing)}")
    net.load_state_dict(own)
    return extended


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

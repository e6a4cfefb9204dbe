"""Re-parameterisable blocks: train wide, deploy narrow (RepVGG, ACNet, DenoiseRep).

During training each 3x3 convolution of a ``NoiseMapUNet``'s residual blocks and tail is the
sum of parallel branches: 3x3, 1x1, 1x3, 3x1 and (when input and output widths match) the
identity, each followed by its own BatchNorm (``bn=True``, RepVGG/ACNet) or by a learnt
per-channel scale (``bn=False``, OREPA-style: the branches are merged into one kernel on the
fly, so a training step costs about what the plain net's does).  All branches are linear, so
after training they add up to one 3x3 kernel and bias: ``fold()`` returns a plain
``NoiseMapUNet`` with the same config, state-dict keys and cost as the network it widens,
which is what export (ONNX, TensorRT) and ``engines.open_engine`` get
(``models.registry.create_model`` folds at load time).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .arch import NoiseMapUNet, ResBlock, UNetConfig

KERNELS = {"k3x3": (3, 3), "k1x1": (1, 1), "k1x3": (1, 3), "k3x1": (3, 1)}


def _pad3(w: torch.Tensor) -> torch.Tensor:
    """A (O, I, kh, kw) kernel with kh, kw in {1, 3}, centred in a 3x3 kernel."""
    kh, kw = w.shape[-2:]
    return F.pad(w, ((3 - kw) // 2, (3 - kw) // 2, (3 - kh) // 2, (3 - kh) // 2))


class RepConv(nn.Module):
    """A 3x3 convolution (stride 1, padding 1) in training form; ``fold()`` -> ``nn.Conv2d``."""

    def __init__(self, cin: int, cout: int, bn: bool = True, identity: bool = True) -> None:
        super().__init__()
        self.cin, self.cout, self.bn = cin, cout, bn
        self.branches = nn.ModuleDict({
            name: nn.Conv2d(cin, cout, k, padding=(k[0] // 2, k[1] // 2), bias=False)
            for name, k in KERNELS.items()
        })
        names = list(KERNELS) + (["identity"] if identity and cin == cout else [])
        if bn:
            self.norms = nn.ModuleDict({name: nn.BatchNorm2d(cout) for name in names})
            # Each branch leaves its BN at unit variance whatever comes in; with gamma 1 five of
            # them made activations grow ~3x per conv through the U-Net (to 1e4 at the tail,
            # where float32 rounding alone broke the 1e-4 fold check).  Start the sum at the
            # output scale of a default-initialised plain conv (std ~ 1/sqrt(3)) instead.
            for norm in self.norms.values():
                nn.init.constant_(norm.weight, (3 * len(names)) ** -0.5)
        else:
            # Per-branch, per-channel scales (the BN's gamma without the statistics) and one bias.
            # Four default-initialised kernels add up to about 4x the plain conv's output
            # variance; halving them and starting the identity at 0 starts at the plain net's.
            self.scales = nn.ParameterDict({
                name: nn.Parameter(torch.full((cout,), 0.0 if name == "identity" else 0.5)) for name in names
            })
            self.bias = nn.Parameter(torch.zeros(cout))
        self.has_identity = "identity" in names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.bn:  # merge first, convolve once
            w, b = self.kernel()
            return F.conv2d(x, w, b, padding=1)
        y = sum(self.norms[name](conv(x)) for name, conv in self.branches.items())
        if self.has_identity:
            y = y + self.norms["identity"](x)
        return y

    def _identity_kernel(self, like: torch.Tensor) -> torch.Tensor:
        k = torch.zeros(self.cout, self.cin, 3, 3, dtype=like.dtype, device=like.device)
        k[torch.arange(self.cout), torch.arange(self.cout), 1, 1] = 1
        return k

    def kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The equivalent 3x3 kernel (O, I, 3, 3) and bias (O,), BN in inference form."""
        ref = self.branches["k3x3"].weight
        kernels = {name: _pad3(conv.weight) for name, conv in self.branches.items()}
        if self.has_identity:
            kernels["identity"] = self._identity_kernel(ref)
        if not self.bn:
            w = sum(k * self.scales[n].view(-1, 1, 1, 1) for n, k in kernels.items())
            return w, self.bias
        w = torch.zeros_like(ref, dtype=torch.float64)
        b = torch.zeros(self.cout, dtype=torch.float64, device=ref.device)
        for name, k in kernels.items():
            norm = self.norms[name]
            scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
            w = w + k.double() * scale.view(-1, 1, 1, 1)
            b = b + norm.bias.double() - norm.running_mean.double() * scale
        return w.to(ref.dtype), b.to(ref.dtype)

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        w, b = self.kernel()
        conv = nn.Conv2d(self.cin, self.cout, 3, padding=1).to(w.device, w.dtype)
        conv.weight.copy_(w)
        conv.bias.copy_(b)
        return conv


class RepNoiseMapUNet(NoiseMapUNet):
    """``NoiseMapUNet`` whose residual-block convolutions and tail are ``RepConv``s.

    The head (1x1 or 3x3 on the unshuffled input), the 2x2 down/up-sampling convolutions and
    the skip connections stay as they are; ``fold()`` gives the plain net."""

    def __init__(self, cfg: UNetConfig, bn: bool = True) -> None:
        super().__init__(cfg)
        self.rep_bn = bn
        for block in self.modules():
            if isinstance(block, ResBlock):
                ch = block.conv1.in_channels
                block.conv1, block.conv2 = RepConv(ch, ch, bn), RepConv(ch, ch, bn)
        self.tail = RepConv(self.tail.in_channels, self.tail.out_channels, bn, identity=False)

    @torch.no_grad()
    def fold(self) -> NoiseMapUNet:
        """The deploy form: a plain ``NoiseMapUNet`` (same config, eval mode), outputs equal to
        this net's in eval mode."""
        folded = copy.deepcopy(self)
        for parent in list(folded.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, RepConv):
                    setattr(parent, name, child.fold())
        plain = NoiseMapUNet(self.cfg).to(next(self.parameters()).device)
        plain.load_state_dict(folded.state_dict())
        return plain.eval()


def is_unfolded(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds a ``RepNoiseMapUNet``'s training form."""
    return any(".branches." in k for k in state)


def save_folded(name: str, src: str, dst: str, metadata: dict[str, str] | None = None) -> None:
    """Write the deploy form of a re-parameterised model's training-form weights ``src`` to
    ``dst`` (metadata ``form: folded``, the training run's metadata kept), so a product that
    loads them pays no folding at start-up; ``create_model`` loads either form."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from .registry import get_spec

    net = get_spec(name).build()
    net.load_state_dict(load_file(src))
    with safe_open(src, framework="pt") as f:
        meta = dict(f.metadata() or {})
    meta.update(metadata or {}, form="folded", folded_from=f"{name} training form ({Path(src).name})")
    state = {k: v.detach().float().contiguous() for k, v in net.eval().fold().state_dict().items()}
    save_file(state, dst, metadata=meta)

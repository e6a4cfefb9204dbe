"""The transposed-conv output stage (``UNetConfig.tail="convt"``): what it computes, and that a
net with it starts from a conv-tailed net's weights everywhere but the tail."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from models.arch import NoiseMapUNet, UNetConfig, load_compatible

CFG = UNetConfig(unshuffle=4, widths=(8, 16), blocks=(0, 1), head_kernel=1, residual=False, gate=True)


def test_output_is_picture_plus_weighted_frame() -> None:
    """q + k x, where q and k are a 1 x 1 conv of the cells' features and a pixel-shuffle."""
    torch.manual_seed(0)
    net = NoiseMapUNet(replace(CFG, tail="convt", tail_width=12, keep=1)).eval()
    x = torch.rand(2, 3, 32, 48)
    t = torch.randn(2, 12, 8, 12)
    with torch.no_grad():
        out = net.output(x, t)
        h = F.relu(t)
        # a transposed conv with kernel = stride = r is a 1 x 1 conv to r² channels per output
        # channel, pixel-shuffled
        w_q = net.tail_up.weight.permute(1, 2, 3, 0).reshape(3 * 16, 12, 1, 1)
        q = F.pixel_shuffle(F.conv2d(h, w_q), 4) + net.tail_up.bias.view(1, 3, 1, 1)
        w_k = net.tail_keep.weight.permute(1, 2, 3, 0).reshape(16, 12, 1, 1)
        k = F.pixel_shuffle(F.conv2d(h, w_k), 4) + net.tail_keep.bias.view(1, 1, 1, 1)
    assert out.shape == x.shape
    assert torch.allclose(out, q + k * x, atol=1e-5)


def test_without_keep_the_output_is_the_picture() -> None:
    torch.manual_seed(1)
    net = NoiseMapUNet(replace(CFG, tail="convt")).eval()
    assert net.tail_keep is None and net.tail.out_channels == 8  # the finest width by default
    t = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        a = net.output(torch.zeros(1, 3, 16, 16), t)
        b = net.output(torch.ones(1, 3, 16, 16), t)
    assert torch.equal(a, b)  # the frame is not read by the output stage


def test_unknown_tail_is_refused() -> None:
    with pytest.raises(ValueError, match="tail"):
        NoiseMapUNet(replace(CFG, tail="deconv"))


def test_loads_a_conv_tailed_net_and_starts_from_its_picture() -> None:
    """Everything but the tail is copied; the new tail gives the old one's picture (its gate
    fully open), exactly where the old picture channels have no more rank than the new stage
    carries (here 2 directions; a width of 8 carries 4 as +/- pairs), and the weight on the
    frame starts at zero."""
    torch.manual_seed(2)
    old = NoiseMapUNet(CFG).eval()
    with torch.no_grad():
        w = old.tail.weight  # (64, 8, 3, 3): 48 picture channels, then 16 gate channels
        low = torch.randn(48, 2) @ torch.randn(2, 8 * 9) * 0.1
        w[:48] = low.reshape(48, 8, 3, 3)
        old.tail.bias[:48] = torch.randn(48, 2) @ torch.randn(2) * 0.1
        old.tail.bias[48:] = 1e4  # sigmoid = 1: the gate open
        old.tail.weight[48:] = 0
    new = NoiseMapUNet(replace(CFG, tail="convt", tail_width=8, keep=1)).eval()
    assert load_compatible(new, old.state_dict()) == []
    state = new.state_dict()
    for name, value in old.state_dict().items():
        if not name.startswith("tail"):
            assert torch.equal(state[name], value), name
    assert not state["tail_keep.weight"].any() and not state["tail_keep.bias"].any()
    x, sigma = torch.rand(1, 3, 32, 48), torch.full((1, 1, 32, 48), 0.1)
    with torch.no_grad():
        assert torch.allclose(new(x, sigma), old(x, sigma), atol=1e-4)
    # and back: a convt-tailed net's weights into a conv-tailed net leave its tail alone
    back = NoiseMapUNet(CFG)
    tail = back.tail.weight.clone()
    load_compatible(back, state)
    assert torch.equal(back.tail.weight, tail) and torch.equal(back.head.weight, old.head.weight)


def test_yuv420_net_keeps_a_grey_frame_when_told_to_keep_the_input() -> None:
    """``Yuv420UNet`` (lab ``pico-yuv``) with its pictures at zero and its weights on the input
    at one gives back the frame through 4:2:0: a grey frame (no chroma) exactly, any size."""
    from models.arch import Yuv420UNet

    net = Yuv420UNet(CFG).eval()
    with torch.no_grad():
        for conv in (net.luma_up, net.chroma_up, net.luma_keep, net.chroma_keep):
            conv.weight.zero_()
            conv.bias.zero_()
        net.luma_keep.bias.fill_(1)
        net.chroma_keep.bias.fill_(1)
        grey = torch.rand(1, 1, 37, 53).expand(1, 3, 37, 53)
        out = net(grey, torch.full((1, 1, 37, 53), 0.1))
    assert out.shape == grey.shape
    assert torch.allclose(out, grey, atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        Yuv420UNet(replace(CFG, unshuffle=3))

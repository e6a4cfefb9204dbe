"""Re-parameterised blocks: the folded net computes what the training form computes, and every
way the product loads a rep model (create_model, open_engine, ONNX export) gets the folded one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import create_model, get_spec, model_names
from models.arch import NoiseMapUNet, count_macs
from models.reparam import RepConv, RepNoiseMapUNet

REP = ["fast-rep", "fast-rep-nobn"]


def randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights and BatchNorm statistics, as after training."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 1 else 0.1))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net.eval()


def train_briefly(net: torch.nn.Module, steps: int = 8) -> torch.nn.Module:
    """A few real optimiser steps (BatchNorm statistics move too) on a denoising loss."""
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    net.train()
    with torch.enable_grad():  # some commands run in-process turn grad off globally
        _steps(net, opt, gen, steps)
    return net.eval()


def _steps(net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, steps: int) -> None:
    for _ in range(steps):
        clean = torch.rand(4, 3, 32, 32, generator=gen)
        noisy = clean + torch.randn(clean.shape, generator=gen) * 0.1
        loss = (net(noisy, torch.full_like(clean[:, :1], 0.1)) - clean).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize(("cin", "cout"), [(8, 8), (5, 12)])
def test_repconv_folds_to_one_conv(bn: bool, cin: int, cout: int) -> None:
    conv = randomise(RepConv(cin, cout, bn))
    x = torch.randn(2, cin, 13, 7)
    with torch.no_grad():
        diff = (conv(x) - conv.fold()(x)).abs().max()
    assert diff <= 1e-5


@pytest.mark.parametrize("name", REP)
@pytest.mark.parametrize("weights", ["random", "trained"])
def test_folded_equals_unfolded(name: str, weights: str) -> None:
    torch.manual_seed(0)
    net = get_spec(name).build()
    net = randomise(net) if weights == "random" else train_briefly(net)
    folded = net.fold()
    assert type(folded) is NoiseMapUNet and folded.cfg == net.cfg
    for size in [(37, 53), (1, 1), (65, 31), (16, 16)]:  # odd sizes pad inside forward
        x = torch.rand(2, 3, *size)
        s = torch.rand(2, 1, *size) * 0.2
        with torch.no_grad():
            a, b = net(x, s), folded(x, s)
        assert (a - b).abs().max().item() <= 1e-4, size
    # The gate can pass the input through (output == x whatever the trunk says), so compare
    # the trunks too, which carry every folded conv: relative to their (non-trivial) size.
    y = torch.randn(2, net.cfg.widths[0], 12, 20)
    with torch.no_grad():
        ta, tb = net.trunk(y), folded.trunk(y)
    assert ta.abs().max() > 1e-2
    assert (ta - tb).abs().max() <= 1e-5 * max(1.0, float(ta.abs().max()))


def test_folded_has_fasts_structure_and_cost() -> None:
    plain = get_spec("fast").build()
    folded = get_spec("fast-rep").build().eval().fold()
    assert folded.state_dict().keys() == plain.state_dict().keys()
    assert all(v.shape == plain.state_dict()[k].shape for k, v in folded.state_dict().items())
    assert count_macs(folded, 64, 64) == count_macs(plain, 64, 64)
    assert count_macs(get_spec("fast-rep").build(), 64, 64) > count_macs(plain, 64, 64)  # wider in training


def test_lab_variants_are_not_product_names() -> None:
    assert not set(REP) & set(model_names())
    assert set(REP) <= set(model_names(lab=True))


@pytest.fixture(scope="module")
def unfolded_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RepNoiseMapUNet]:
    from safetensors.torch import save_file

    net = train_briefly(get_spec("fast-rep").build(), steps=10)
    path = tmp_path_factory.mktemp("rep") / "fast-rep.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path, net


def test_create_model_folds_unfolded_and_loads_folded(unfolded_weights, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path, net = unfolded_weights
    model = create_model("fast-rep", weights=path)
    assert type(model) is NoiseMapUNet
    x, s = torch.rand(1, 3, 33, 47), torch.full((1, 1, 33, 47), 0.1)
    with torch.no_grad():
        ref = net(x, s)
        assert (model(x, s) - ref).abs().max() <= 1e-4
        # stored folded (metadata says so): loaded as is, same outputs
        folded = tmp_path / "folded.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folded),
                  metadata={"form": "folded"})
        assert (create_model("fast-rep", weights=folded)(x, s) - ref).abs().max() <= 1e-4
    assert type(create_model("fast-rep", pretrained=False)) is NoiseMapUNet


def test_save_folded_writes_the_deploy_form(unfolded_weights, tmp_path: Path) -> None:
    from safetensors import safe_open

    from models.reparam import save_folded

    path, net = unfolded_weights
    dst = tmp_path / "fast.safetensors"
    save_folded("fast-rep", str(path), str(dst), {"estimator": "net"})
    with safe_open(str(dst), framework="pt") as f:
        assert f.metadata()["form"] == "folded" and f.metadata()["estimator"] == "net"
        assert set(f.keys()) == set(get_spec("fast").build().state_dict())
    x, s = torch.rand(1, 3, 29, 41), torch.full((1, 1, 29, 41), 0.05)
    with torch.no_grad():  # the folded file is plain fast's format: loads as fast or as fast-rep
        for name in ("fast", "fast-rep"):
            assert (create_model(name, weights=dst)(x, s) - net(x, s)).abs().max() <= 1e-4


def test_open_engine_gets_the_folded_net(unfolded_weights) -> None:
    from engines import open_engine

    path, net = unfolded_weights
    with open_engine("fast-rep", backend="torch", device="cpu", weights=path) as eng:
        assert type(eng.net) is NoiseMapUNet
        frame = (np.random.default_rng(0).random((1, 31, 45, 3)) * 255).astype(np.uint8)
        out = eng.infer(frame, 20.0)
    x = torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ref = net(x, torch.full((1, 1, 31, 45), 20 / 255)).clamp(0, 1) * 255
    assert np.abs(out.astype(np.float32) - ref.permute(0, 2, 3, 1).numpy()).max() <= 1.0  # 8-bit rounding


def test_onnx_export_of_rep_model_is_folded_and_matches_torch(unfolded_weights, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from engines.export import export_onnx

    path, net = unfolded_weights
    out = export_onnx("fast-rep", "fp32", tmp_path / "fast-rep.onnx", weights=path)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "BatchNormalization" not in ops
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(48, 80), (64, 96)]:  # the exported graph takes multiples of 16
        x = rng.random((1, 3, h, w), dtype=np.float32)
        s = np.full((1, 1, h, w), 0.1, np.float32)
        got = sess.run(None, {"x": x, "sigma": s})[0]
        with torch.no_grad():
            ref = net(torch.from_numpy(x), torch.from_numpy(s)).numpy()  # the training form
        assert np.abs(got - ref).max() <= 1e-4

"""Real-camera noise: the replayed camera pipeline, the gated output, twins, the pair split,
the learned noise-level estimator."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from models import noise
from models.arch import NoiseMapUNet, UNetConfig, load_compatible
from models.data import pair_paths
from models.estimate_net import NoiseLevelNet, crops, loss

TINY = UNetConfig(unshuffle=2, widths=(8, 16), blocks=(1, 1), residual=False)


def _photos(n: int = 8, size: int = 64) -> torch.Tensor:
    import cv2

    root = Path(__file__).resolve().parents[1] / "data"
    out = []
    for name in ("astronaut_crop.png", "coffee_crop.png"):
        img = cv2.imread(str(root / name))[..., ::-1]
        for i in range(n // 2):
            y, x = 8 * i, 12 * i
            out.append(torch.from_numpy(img[y:y + size, x:x + size].copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def test_camera_isp_noise_is_correlated_in_space_and_colour_and_its_map_is_its_std() -> None:
    x = _photos(16, 96)
    noisy, smap = noise.camera_isp(x, torch.Generator().manual_seed(0), jpeg_share=0.0)
    d = noisy - x
    rms = d.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(smap[:, 0, 0, 0], rms, atol=1e-6)
    assert bool((smap == smap[:, :, :1, :1]).all())  # one level per image
    corr = [noise.correlations((d[i] * 255).permute(1, 2, 0).numpy()) for i in range(len(x))]
    # white noise would give 0; the plain Bayer synthesis gives about 0.1 between channels
    assert np.median([c["lag1"] for c in corr]) > 0.3
    assert np.median([c["lag2"] for c in corr]) > 0.1
    assert np.median([c["rg"] for c in corr]) > 0.3
    # 8-bit values
    assert torch.allclose(noisy * 255, (noisy * 255).round(), atol=1e-4)


def test_correlations_of_white_noise_are_near_zero() -> None:
    rng = np.random.default_rng(0)
    c = noise.correlations(rng.normal(0, 5, (200, 200, 3)))
    assert all(abs(v) < 0.03 for v in c.values())


def test_gate_closed_passes_the_input_through_exactly() -> None:
    net = NoiseMapUNet(dataclasses.replace(TINY, gate=True)).eval()
    r2 = TINY.unshuffle ** 2
    with torch.no_grad():
        net.tail.weight[3 * r2:] = 0
        net.tail.bias[3 * r2:] = -30.0  # sigmoid ~ 1e-13
        x = torch.rand(1, 3, 21, 30)
        out = net(x, torch.zeros(1, 1, 21, 30))
    assert (out - x).abs().max().item() < 1e-6


def test_load_compatible_makes_a_twin_and_a_gated_net_that_start_as_the_original() -> None:
    torch.manual_seed(0)
    plain = NoiseMapUNet(TINY).eval()
    state = plain.state_dict()
    twin = NoiseMapUNet(dataclasses.replace(TINY, temporal=True, gate=True))
    grown = load_compatible(twin, state, gate_bias=20.0)
    assert set(grown) == {"head.weight", "tail.weight", "tail.bias"}
    x, s = torch.rand(2, 3, 24, 20), torch.full((2, 1, 24, 20), 0.1)
    with torch.no_grad():
        assert (twin.eval()(x, s, torch.rand_like(x)) - plain(x, s)).abs().max().item() < 1e-6
    with pytest.raises(ValueError):
        load_compatible(NoiseMapUNet(dataclasses.replace(TINY, widths=(4, 8))), state)


def test_shipped_fast_is_gated_and_export_folds_it() -> None:
    from engines.export import FoldedStem, fold_stem

    net = models.create_model("fast")
    assert net.cfg.gate
    assert isinstance(fold_stem(net), FoldedStem)


def test_pair_split_keeps_each_scene_in_one_half(tmp_path: Path) -> None:
    for scene in ("camA_iso_chair", "camA_iso_desk", "camB_iso_toy"):
        for shot in (1, 2):
            for kind in ("real", "mean"):
                (tmp_path / f"{scene}_{shot}_{kind}.JPG").write_bytes(b"x")
    tune, test = pair_paths(tmp_path, "tune"), pair_paths(tmp_path, "test")
    names = lambda ps: {p[0].name.rsplit("_", 2)[0] for p in ps}
    assert len(tune) + len(test) == len(pair_paths(tmp_path)) == 6
    assert names(tune) == {"camA_iso_chair", "camB_iso_toy"} and names(test) == {"camA_iso_desk"}


def test_estimator_net_pools_crops_and_its_loss_punishes_reading_low() -> None:
    img = np.zeros((50, 300, 3), np.uint8)
    c = crops(img)
    assert c.shape == (16, 64, 64, 3)
    net = NoiseLevelNet()
    lv = net.pooled(torch.rand(8, 3, 64, 64), groups=2)
    assert lv.shape == (2,)
    t = torch.tensor([0.1])
    assert loss(t / 2, t) > loss(t * 2, t)


def test_each_model_gets_the_noise_reading_it_was_trained_with() -> None:
    from models.estimate import estimate, estimator_for

    assert estimator_for("fast").keywords["method"] == "net"  # trained on the estimator's mix
    assert estimator_for("base").keywords["method"] == "combined"
    rng = np.random.default_rng(0)
    img = np.clip(_photos(2, 96)[0].permute(1, 2, 0).numpy() * 255 + rng.normal(0, 20, (96, 96, 3)), 0, 255)
    img = img.round().astype(np.uint8)
    assert estimator_for("fast")(img) == estimate(img, "net")
    assert estimator_for("base")(img) == estimate(img, "combined")
    assert 14 < estimate(img, "net") < 26  # white noise of 20, read by the learned estimator


def test_combined_reading_is_pca_on_light_noise_and_the_learned_one_on_heavy() -> None:
    from models.estimate import HEAVY, estimate
    from models.estimate_net import estimate_sigma_net

    rng = np.random.default_rng(1)
    photo = _photos(2, 128)[0].permute(1, 2, 0).numpy() * 255
    light = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).round().astype(np.uint8)
    assert estimate(light, "net") < HEAVY
    assert estimate(light, "combined") == estimate(light, "pca")  # light noise: PCA alone
    heavy = np.clip(photo + rng.normal(0, 50, photo.shape), 0, 255).round().astype(np.uint8)
    pca, net = estimate(heavy, "pca"), estimate_sigma_net(heavy)  # the reading as it is
    assert net > HEAVY
    assert estimate(heavy, "combined") == net
    assert abs(net - 50) < abs(pca - 50)  # clipping makes PCA read heavy noise low


def test_processor_reads_the_noise_the_way_its_engine_model_expects() -> None:
    from stream.processor import Processor

    class Engine:
        model = "fast"
        temporal = False

    p = Processor(Engine(), sigma=None)
    assert p.auto is not None and p.estimator.keywords["method"] == "net"

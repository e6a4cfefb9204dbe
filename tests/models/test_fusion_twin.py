"""The fusion twin (``models.arch.FusionUNet``, registered as ``fast-fusion``) and the flow
alignment of its previous output (``models.align``), in the model, the training loop and the
processor."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import models
from models.align import FlowAligner, sequence_grids
from models.lab.train_temporal import flow_grids, init_from_per_frame, unroll


def textured(h: int = 144, w: int = 192, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.normal(128, 60, (h // 4, w // 4, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The picture a camera panning by (dx, dy) px sees next: content moves by (-dx, -dy)."""
    return np.roll(img, (-dy, -dx), axis=(0, 1))


def fusion_from_random_per_frame(tmp_path) -> tuple[torch.nn.Module, torch.nn.Module]:
    per_frame = models.get_spec("fast").build()
    for p in per_frame.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_file({k: v.contiguous() for k, v in per_frame.state_dict().items()}, str(tmp_path / "w.safetensors"))
    twin = models.get_spec("fast-fusion").build()
    init_from_per_frame(twin, tmp_path / "w.safetensors")
    return per_frame.eval(), twin.eval()


def test_fusion_without_prev_is_the_per_frame_net_and_starts_close_to_it(tmp_path):
    per_frame, twin = fusion_from_random_per_frame(tmp_path)
    x, s = torch.rand(1, 3, 37, 45), torch.full((1, 1, 37, 45), 0.08)
    with torch.no_grad():
        ref = per_frame(x, s)
        torch.testing.assert_close(twin(x, s), ref, atol=1e-6, rtol=0)
        # at initialisation the blend weight is sigmoid(-4) = 0.018: prev (far from x) moves
        # the output by a fraction of that
        moved = (twin(x, s, 1 - x) - ref).abs().mean().item()
    assert 1e-5 < moved < 0.02


def test_fusion_blends_towards_prev_where_the_branch_says_so(tmp_path):
    _, twin = fusion_from_random_per_frame(tmp_path)
    with torch.no_grad():
        twin.fuse_out.bias.fill_(30.0)  # a = 1, b = 1: the previous output, told no noise
        x, prev = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
        s = torch.full((1, 1, 32, 48), 0.1)
        per_frame_of_prev = twin(prev, torch.zeros_like(s))  # no prev: the per-frame net
        torch.testing.assert_close(twin(x, s, prev), per_frame_of_prev, atol=1e-5, rtol=0)


def test_aligner_warps_the_previous_output_onto_a_pan():
    scene = textured(200, 260)
    rng = np.random.default_rng(1)
    frames = [shifted(scene, 3 * t, t)[20:164, 20:212] for t in range(3)]
    noisy = [np.clip(f + rng.normal(0, 10, f.shape), 0, 255).astype(np.uint8) for f in frames]
    aligner = FlowAligner()
    assert aligner(noisy[0], None) is None  # the first frame: nothing before
    warped = aligner(noisy[1], frames[0])
    inner = (slice(12, -12), slice(12, -12))
    err_warped = np.abs(warped[inner].astype(float) - frames[1][inner]).mean()
    err_still = np.abs(frames[0][inner].astype(float) - frames[1][inner]).mean()
    assert err_warped < 0.25 * err_still, (err_warped, err_still)
    assert aligner(noisy[2][:100], frames[1][:100]) is None  # a size change starts over
    aligner.reset()
    assert aligner(noisy[2], frames[1]) is None


def test_training_grids_match_the_aligner():
    rng = np.random.default_rng(2)
    scene = textured(120, 160, seed=3)
    seq = np.stack([shifted(scene, 2 * t, 0)[8:88, 8:136] for t in range(3)])
    noisy = np.clip(seq + rng.normal(0, 8, seq.shape), 0, 255).astype(np.uint8)[None]
    grids = sequence_grids(noisy)  # (1, 3, 80, 128, 2)
    aligner = FlowAligner()
    aligner.where(noisy[0, 0])
    where = aligner.where(noisy[0, 1])
    prev = torch.from_numpy(seq[0]).permute(2, 0, 1)[None].float()
    by_grid = torch.nn.functional.grid_sample(prev, torch.from_numpy(grids[:, 1]), mode="bilinear",
                                              padding_mode="border", align_corners=False)
    by_remap = cv2.remap(seq[0].astype(np.float32), where, None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    # OpenCV interpolates with 1/32-pixel weights: within half a level, 0.05 on average
    diff = np.abs(by_grid[0].permute(1, 2, 0).numpy() - by_remap)
    assert diff.max() < 0.5 and diff.mean() < 0.05, (diff.max(), diff.mean())
    # frame 0 has no frame before: the identity
    ident = torch.nn.functional.grid_sample(prev, torch.from_numpy(grids[:, 0]), mode="bilinear",
                                            padding_mode="border", align_corners=False)
    torch.testing.assert_close(ident, prev, atol=1e-3, rtol=0)
    assert flow_grids(torch.from_numpy(noisy).permute(0, 1, 4, 2, 3).float() / 255).shape == (1, 3, 80, 128, 2)


def test_unroll_aligns_the_previous_output():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, sigma, prev=None):
            seen.append(None if prev is None else prev.clone())
            return x

    scene = textured(120, 160, seed=4)
    clean = np.stack([shifted(scene, 3 * t, 0)[8:88, 8:136] for t in range(3)])
    seq = torch.from_numpy(clean).permute(0, 3, 1, 2)[None].float() / 255
    unroll(Spy(), seq, torch.zeros(1, 3, 1, 80, 128), aligned=True)
    assert seen[0] is None
    inner = (..., slice(10, -10), slice(10, -10))
    err_aligned = (seen[1] - seq[:, 1])[inner].abs().mean().item()
    err_still = (seq[:, 0] - seq[:, 1])[inner].abs().mean().item()
    assert err_aligned < 0.25 * err_still, (err_aligned, err_still)


@pytest.mark.slow
def test_train_only_the_branch(tmp_path):
    """``--train-only fuse_``: the per-frame net stays exactly as loaded, the branch learns."""
    from models.lab.temporal_data import DAVIS_VAL_START
    from models.lab.train_temporal import main

    root = tmp_path / "data"
    (root / "bsds500" / "train").mkdir(parents=True)
    (root / "video" / "davis-bus").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "bsds500" / "train" / f"{i}.jpg"), textured(80, 112, seed=i))
    (root / "splits").mkdir()
    (root / "splits" / "cbsd432.txt").write_text("0\n1\n2\n3\n")
    scene = textured(96, 200, seed=9)
    for f in range(DAVIS_VAL_START + 6):  # the held-out frames validation reads
        cv2.imwrite(str(root / "video" / "davis-bus" / f"{f:05d}.jpg"), np.roll(scene, f, axis=1)[:, :96])
    fusion_from_random_per_frame(tmp_path)
    out = tmp_path / "run"
    assert main(["--model", "fast-fusion", "--device", "cpu", "--smoke", "--data", str(root),
                 "--no-clips", "--init", str(tmp_path / "w.safetensors"), "--train-only", "fuse_",
                 "--lr", "1e-2", "--out", str(out), "--val-size", "32"]) == 0
    trained = load_file(str(out / "fast-fusion.safetensors"))
    start = load_file(str(tmp_path / "w.safetensors"))
    for name, value in start.items():  # the per-frame net, untouched
        torch.testing.assert_close(trained[name], value, atol=0, rtol=0)
    assert (trained["fuse_out.bias"] - (-4.0)).abs().max().item() > 1e-3

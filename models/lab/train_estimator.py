"""Train the learned noise-level estimator (``models.estimate_net``) on the denoisers' noise mix.

    python -m models train-estimator --steps 6000 --threads 1 --out runs/estimator

Each step corrupts 16 random 128 x 128 CBSD432 crops with ``models.training.noisy_batch`` (the
same mix and the same maps the denoisers learn from), cuts each into four 64 x 64 crops, and
fits the confidence-pooled level of the four to the mean of the true map (asymmetric loss).
Resumable: the same command continues from ``OUT/checkpoint.pt``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from .. import training
from ..data import DEFAULT_DATA, PatchSampler, list_digest, split_paths
from ..estimate_net import CROP, NoiseLevelNet, loss

log = logging.getLogger("models.lab.train_estimator")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models train-estimator", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=Path("runs/estimator"))
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--low", type=float, default=training.NoiseMix.low,
                   help="share of Gaussian samples with sigma 0..5 (a quarter of them clean)")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (.safetensors)")
    training.add_mix_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = split_paths(args.data, "cbsd432")
    sampler = PatchSampler(paths, torch.device("cpu"), seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    mix, bank = training.mix_from_args(args)
    net = NoiseLevelNet()
    if args.init:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(args.init)))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    loop = training.Loop(net, opt, training.Cosine(args.lr), steps=args.steps, clip=None,
                         checkpoint=args.out / "checkpoint.pt", save_every=training.Every(steps=1000),
                         state=lambda: {"sampler": sampler.state(), "gen": gen.get_state()}, log_every=200)
    if (ck := loop.resume()) is not None:
        sampler.set_state(ck["sampler"]), gen.set_state(ck["gen"])

    def step_loss() -> torch.Tensor:
        clean = sampler.sample(args.batch, 2 * CROP)
        noisy, smap = training.noisy_batch(clean, mix, gen, bank)
        target = smap.mean(dim=(1, 2, 3))  # (B,)
        # (B, 3, 2C, 2C) -> (4B, 3, C, C): four crops per image, consecutive
        quads = noisy.unfold(2, CROP, CROP).unfold(3, CROP, CROP)  # (B, 3, 2, 2, C, C)
        quads = quads.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, CROP, CROP)
        return loss(net.pooled(quads, groups=args.batch), target)

    loop.run(step_loss)
    training.save_weights(net, args.out / "estimator.safetensors", {
        "model": "estimator",
        "command": training.command("python -m models train-estimator", argv),
        "data": f"CBSD432 ({len(paths)} images), sha256[:16] {list_digest(paths)}",
        "noise": str(mix.__dict__), **training.bank_metadata(bank, args), "steps": str(loop.step), "batch": str(args.batch), "device": "cpu",
        "train_minutes": f"{loop.run_minutes:.1f}",
        **training.init_lineage(args.init),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

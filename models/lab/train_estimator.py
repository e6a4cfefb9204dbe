"""Train the learned noise-level estimator (``models.estimate_net``) on the denoisers' noise mix.

    python -m models train-estimator --steps 6000 --threads 1 --out runs/estimator

Each step corrupts 16 random 128 x 128 CBSD432 crops with ``models.lab.train.noisy_batch`` (the
same mix and the same maps the denoisers learn from), cuts each into four 64 x 64 crops, and
fits the confidence-pooled level of the four to the mean of the true map (asymmetric loss).
Resumable: the same command continues from ``OUT/checkpoint.pt``.
"""
from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import time
from pathlib import Path

import torch

from ..data import DEFAULT_DATA, PatchSampler, list_digest, split_paths
from ..estimate_net import CROP, NoiseLevelNet, loss
from .train import NoiseMix, export_weights, noisy_batch

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
    p.add_argument("--low", type=float, default=NoiseMix.low,
                   help="share of Gaussian samples with sigma 0..5 (a quarter of them clean)")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (.safetensors)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = split_paths(args.data, "cbsd432")
    sampler = PatchSampler(paths, torch.device("cpu"), seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    mix = NoiseMix(low=args.low)
    net = NoiseLevelNet()
    if args.init:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(args.init)))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    ckpt = args.out / "checkpoint.pt"
    if ckpt.exists():
        ck = torch.load(ckpt, weights_only=False)
        net.load_state_dict(ck["model"]), opt.load_state_dict(ck["opt"])
        step = ck["step"]
        sampler.set_state(ck["sampler"]), gen.set_state(ck["gen"])
        log.info("resumed at step %d", step)
    t0, step0, run = time.perf_counter(), step, 0.0
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        clean = sampler.sample(args.batch, 2 * CROP)
        noisy, smap = noisy_batch(clean, mix, gen)
        target = smap.mean(dim=(1, 2, 3))  # (B,)
        # (B, 3, 2C, 2C) -> (4B, 3, C, C): four crops per image, consecutive
        quads = noisy.unfold(2, CROP, CROP).unfold(3, CROP, CROP)  # (B, 3, 2, 2, C, C)
        quads = quads.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, CROP, CROP)
        lv = net.pooled(quads, groups=args.batch)
        err = loss(lv, target)
        opt.zero_grad(set_to_none=True)
        err.backward()
        opt.step()
        step += 1
        run = 0.98 * run + 0.02 * float(err.detach())
        if step % 200 == 0:
            log.info("step %d/%d loss %.4f %.1f steps/s", step, args.steps, run,
                     (step - step0) / (time.perf_counter() - t0))
        if step % 1000 == 0 or step == args.steps:
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                        "sampler": sampler.state(), "gen": gen.get_state()}, ckpt)
    export_weights(net, args.out / "estimator.safetensors", {
        "model": "estimator",
        "command": "python -m models train-estimator " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "data": f"CBSD432 ({len(paths)} images), sha256[:16] {list_digest(paths)}",
        "noise": str(mix.__dict__), "steps": str(step), "batch": str(args.batch), "device": "cpu",
        "train_minutes": f"{(time.perf_counter() - t0) / 60:.1f}",
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

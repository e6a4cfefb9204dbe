"""Train a registered per-frame denoiser on CBSD432 photos with synthetic camera noise.

The shipped ``fast`` came from a chain of CPU runs (each listed, with steps and minutes, in
``lineage`` of its safetensors metadata and in models/weights/fast.json); the last one:

    python -m models train --model fast --device cpu --threads 1 --steps 32000 --batch 16 \
        --patch 64 --lr 5e-4 --init fast-gate3.safetensors --out runs/fast-real

where ``fast-gate3.safetensors`` is the earlier ``fast`` with its gate added open
(``models.arch.load_compatible(..., gate_bias=3)``).  ``base`` came from H100 runs
(``python -m models train --model base --device cuda --minutes 6 --out runs/base`` and a
continuation with ``--init``) and a CPU fine-tune on the camera-pipeline mix:

    python -m models train --model base --device cpu --threads 1 --steps 6000 --batch 16 \
        --patch 64 --lr 2e-4 --init models/weights/base.safetensors

``--real-noise DIR`` replays the noise of one's own noisy/clean pairs (their tune half only,
``models.noise_bank``); no shipped weights use it, since the PolyU pairs in ../shared/data
are for calibrating and evaluating only (a ``base`` fine-tuned on their noise was withdrawn
on 2026-12-03).  ``--coarse SHARE`` adds synthetic coarse colour-correlated noise
(``models.noise.coarse``).

On a CPU, run it in the background and resume (the same command continues from
``OUT/checkpoint.pt``; ``--steps`` may extend or shorten the schedule).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import DEFAULT_DATA, PatchSampler, list_digest, read_rgb, split_paths
from ..metrics import psnr
from ..registry import get_spec
from ..training import (
    Cosine,
    Every,
    Loop,
    NoiseMix,
    add_mix_args,
    bank_metadata,
    command,
    init_lineage,
    mix_from_args,
    noisy_batch,
    save_weights,
)

log = logging.getLogger("models.lab.train")


def validate(model: torch.nn.Module, images: list[torch.Tensor], sigma: float = 25.0) -> float:
    """Mean PSNR (8-bit output, unclipped noise, fixed seed) on a few images; monitoring only."""
    gen = torch.Generator().manual_seed(1234)
    model.eval()
    scores = []
    with torch.no_grad():
        for img in images:
            x = img.unsqueeze(0)
            n = torch.randn(x.shape, generator=gen).to(x.device) * (sigma / 255)
            out = model(x + n, torch.full_like(x[:, :1], sigma / 255))
            scores.append(psnr(out.clamp(0, 1).mul(255).round() / 255, x))
    model.train()
    return sum(scores) / len(scores)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models train", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with bsds500/ and splits/")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/MODEL)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--minutes", type=float, default=None, help="time budget; sets --steps from the measured speed")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--patch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (.safetensors)")
    p.add_argument("--low", type=float, default=NoiseMix.low,
                   help="share of Gaussian samples with sigma 0..5 (a quarter of them clean)")
    add_mix_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = argparse.ArgumentParser(add_help=False)
    known.add_argument("--model")
    if (name := known.parse_known_args(argv)[0].model) is not None:
        try:
            if get_spec(name).temporal:  # sequences, not photos: its own options
                from .train_temporal import main as temporal_main

                return temporal_main(argv)
        except ValueError:
            pass  # unknown model: reported below
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    spec = get_spec(args.model)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = cuda  # fixed patch shapes: let cuDNN pick its fastest kernels
    batch = args.batch or (48 if cuda else 16)
    patch = args.patch or (128 if cuda else 64)
    lr = args.lr or (2e-3 if cuda else 1e-3)
    out = args.out or Path("runs") / args.model
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, 1 avoids OpenMP spin-waiting

    train_paths = split_paths(args.data, "cbsd432")
    val_paths = split_paths(args.data, "cbsd68")[:4]
    sampler = PatchSampler(train_paths, dev, seed=args.seed)
    val_imgs = [torch.from_numpy(read_rgb(p)[:256, :256]).permute(2, 0, 1).float().div(255).to(dev) for p in val_paths]
    gen = torch.Generator().manual_seed(args.seed + 1)
    mix, bank = mix_from_args(args)

    model = spec.build().to(dev).train()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    if args.init:
        from safetensors.torch import load_file

        from ..arch import load_compatible

        grown = load_compatible(model, load_file(str(args.init)))
        if grown:
            log.info("init %s: extended %s (new inputs zero, gate open)", args.init, ", ".join(grown))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loop = Loop(model, opt, Cosine(lr, warmup=200, floor=0.005), steps=args.steps, minutes=args.minutes,
                fix_steps=True, checkpoint=out / "checkpoint.pt", save_every=Every(steps=args.ckpt_every),
                state=lambda: {"sampler": sampler.state(), "gen": gen.get_state()})
    if (ck := loop.resume(dev)) is not None:
        sampler.set_state(ck["sampler"])
        gen.set_state(ck["gen"])
    if loop.total is None and args.minutes is None:
        loop.total = 20000

    def loss() -> torch.Tensor:
        clean = sampler.sample(batch, patch)
        noisy, smap = noisy_batch(clean, mix, gen, bank)
        if cuda:
            clean, noisy, smap = (t.contiguous(memory_format=torch.channels_last) for t in (clean, noisy, smap))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            out_img = model(noisy, smap)
        return F.l1_loss(out_img.float(), clean)

    def monitor() -> None:
        log.info("step %d val PSNR (4 CBSD68 crops, sigma 25, monitoring only) %.2f dB", loop.step,
                 validate(model, val_imgs))

    loop.run(loss, [(Every(steps=args.val_every), monitor)])
    val = validate(model, val_imgs)
    log.info("done: %d steps in %.1f min, val PSNR %.2f dB", loop.step, loop.run_minutes, val)
    save_weights(model, out / f"{args.model}.safetensors", {
        "model": args.model,
        "command": command("python -m models train", argv),
        "data": f"CBSD432 ({len(train_paths)} BSDS500 images listed in splits/cbsd432.txt), sha256[:16] {list_digest(train_paths)}",
        "steps": str(loop.step), "batch": str(batch), "patch": str(patch), "lr": str(lr), "seed": str(args.seed),
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "noise": json.dumps(mix.__dict__),
        **bank_metadata(bank, args),
        "train_minutes": f"{loop.run_minutes:.1f}",
        **init_lineage(args.init),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

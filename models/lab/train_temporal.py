"""Train the recurrent (temporal) denoiser on simulated and real video sequences.

The shipped ``base-temporal`` weights (2-core CPU, 80 minutes, from the shipped ``base``):

    python -m models train --model base-temporal --device cpu --threads 1 --minutes 80 \
        --batch 4 --frames 4 --patch 96 --lr 2e-4 --flicker-weight 0.5 --val-size 192 \
        --init models/weights/base.safetensors --out runs/base-temporal-cpu

The shipped ``fast-temporal`` weights (2-core CPU, 110 minutes, from ``fast`` as of commit
690a360; not released to ``--temporal auto``, see the README):

    nice -n 10 python -m models.lab.train_temporal --model fast-temporal --device cpu --threads 1 \
        --minutes 110 --batch 12 --frames 5 --patch 80 --lr 2e-4 --flicker-weight 0.5 \
        --static-prob 0.35 --clip-prob 0.3 --clips davis-bus --val-size 160 --ckpt-minutes 4 \
        --init models/weights/fast.safetensors --out /root/denoise-runs/fast-temporal

On a GPU (about 20 steps/s at the defaults on an H100; bf16 autocast, channels_last):

    python -m models train --model base-temporal --device cuda --minutes 6 \
        --init models/weights/base.safetensors --data ../shared/data --out runs/base-temporal

CPU smoke run (tiny patches, a few steps):

    python -m models.lab.train_temporal --model base-temporal --device cpu --smoke --out /tmp/tt

Each step unrolls ``--frames`` frames: the model sees the noisy frame, its noise map and its
own previous output (the first frame gets none), and the loss covers every frame.  Gradients
flow through the recurrence unless ``--detach``.  All sequences are made on the training
device from uint8 frames loaded once (``models.lab.temporal_data``).  The run is seeded, stops at
``--minutes`` of wall clock (or ``--steps``), checkpoints to ``OUT/checkpoint.pt`` every
minute and resumes from it when run again with the same ``--out``.  The result is
``OUT/<model>.safetensors`` with the command, data list and steps in its metadata; copy it
to ``models/weights/`` to ship it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import DEFAULT_DATA
from ..registry import get_spec
from ..training import Cosine, Every, Loop, command, init_lineage, save_weights
from .temporal_data import MotionConfig, SequenceSource, add_noise, val_sequences

log = logging.getLogger("models.lab.train_temporal")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.lab.train_temporal", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="base-temporal", help="a registered temporal model")
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, log, weights)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder holding bsds500/ splits/ video/ (default ../shared/data)")
    p.add_argument("--init", type=Path, help="per-frame weights (.safetensors) to start from")
    p.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: budget only)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=6, help="frames unrolled per sequence")
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--sigma-max", type=float, default=55.0)
    p.add_argument("--camera", type=float, default=0.25, help="share of camera-like noise")
    p.add_argument("--isp", type=float, default=0.0,
                   help="share of sequences through a replayed camera pipeline "
                        "(models.noise.camera_isp), one camera per sequence")
    p.add_argument("--jpeg-share", type=float, default=0.5,
                   help="share of the --isp sequences JPEG'd (every frame, one quality)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detach", action="store_true", help="no gradient through previous outputs")
    p.add_argument("--train-only", default="",
                   help="train only the tensors whose names start with this (e.g. fuse_: a "
                        "fusion twin's branch, the per-frame net it started from kept as it is)")
    p.add_argument("--flicker-weight", type=float, default=1.0,
                   help="weight of the temporal-consistency (flicker) term of the loss")
    p.add_argument("--no-clips", action="store_true", help="photos only")
    p.add_argument("--clips", default="davis-bus,bikes",
                   help="real clips to train on, comma list of davis-bus (frames before the "
                        "held-out 60-79) and bikes")
    p.add_argument("--static-prob", type=float, default=MotionConfig.static_prob,
                   help="share of photo sequences with a still camera (tripod, webcam)")
    p.add_argument("--object-prob", type=float, default=MotionConfig.object_prob,
                   help="share of photo sequences with a pasted moving object")
    p.add_argument("--clip-prob", type=float, default=MotionConfig.clip_prob,
                   help="share of each batch taken from the real clips")
    p.add_argument("--ckpt-minutes", type=float, default=1.0,
                   help="checkpoint (and validate) every this many minutes")
    p.add_argument("--photo-limit", type=int, help="use only the first N training photos")
    p.add_argument("--clip-limit", type=int, help="use only the first N frames of each clip")
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny CPU-sized run: patch 32, batch 2, 3 frames, 8 photos, 5 steps")
    return p


def init_from_per_frame(model: torch.nn.Module, path: Path) -> None:
    """Start from per-frame weights: same layers, and the head's previous-output inputs
    zeroed, so the temporal model begins as exactly the per-frame model
    (``models.arch.load_compatible``)."""
    from safetensors.torch import load_file

    from ..arch import load_compatible

    state = load_file(str(path))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if unexpected:
        raise ValueError(f"{path}: unexpected tensors {unexpected}")
    try:
        load_compatible(model, state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def flow_grids(noisy: torch.Tensor) -> torch.Tensor:
    """Sampling grids (B, T, H, W, 2) that warp each frame's previous output onto it along
    the optical flow between the noisy frames, as the product does (``models.align``)."""
    from ..align import sequence_grids

    u8 = (noisy.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 1, 3, 4, 2).cpu().numpy()
    return torch.from_numpy(sequence_grids(u8)).to(noisy.device)


def unroll(model: torch.nn.Module, noisy: torch.Tensor, smap: torch.Tensor,
           detach: bool = False, aligned: bool = False) -> torch.Tensor:
    """Run the recurrence over noisy (B, T, 3, H, W) with noise maps (B, T, 1, H, W); an
    ``aligned`` model gets its previous output warped along the flow (``flow_grids``)."""
    outs, prev = [], None
    cl = torch.channels_last
    grids = flow_grids(noisy) if aligned else None
    for i in range(noisy.shape[1]):
        if prev is not None and grids is not None:
            prev = F.grid_sample(prev, grids[:, i].to(prev.dtype), mode="bilinear",
                                 padding_mode="border", align_corners=False)
        y = model(noisy[:, i].contiguous(memory_format=cl), smap[:, i].contiguous(memory_format=cl), prev)
        outs.append(y)
        prev = y.clamp(0, 1)  # what the product feeds back (an 8-bit frame)
        if detach:
            prev = prev.detach()
    return torch.stack(outs, 1)


@torch.no_grad()
def validate(model: torch.nn.Module, clean: torch.Tensor, sigma255: float, device: torch.device,
             amp: bool, aligned: bool = False) -> dict[str, float]:
    """PSNR and flicker of the recurrent output on held-out windows (fixed noise)."""
    gen = torch.Generator(device="cpu").manual_seed(1234)
    noise = torch.randn(clean.shape, generator=gen).to(device)
    noisy = torch.round((clean + noise * sigma255 / 255).clamp(0, 1) * 255) / 255
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        smap = torch.full_like(clean[:, :, :1], sigma255 / 255)
        out = unroll(model, noisy, smap, aligned=aligned)
    model.train()
    out = torch.round(out.float().clamp(0, 1) * 255) / 255
    mse = ((out - clean) ** 2).mean(dim=(2, 3, 4))  # (W, T)
    psnr = (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()
    d = (out[:, 1:] - out[:, :-1]) - (clean[:, 1:] - clean[:, :-1])
    return {"psnr": psnr, "flicker": d.abs().mean().item() * 255,
            "psnr_last": (10 * torch.log10(1 / mse[:, -1].clamp_min(1e-10))).mean().item()}


def still_val_sequences(data: Path, device: torch.device, size: int = 256,
                        length: int = 10) -> torch.Tensor | None:
    """Held-out still-camera windows (1, T, 3, size, size) from ``video_clips.still_clip``
    (CBSD68 photos, never trained on), or None when those photos are absent."""
    from .video_clips import still_clip

    try:
        frames = still_clip(data, length)
    except FileNotFoundError:
        return None
    h, w = frames[0].shape[:2]
    size = min(size, h, w)
    y0, x0 = (h - size) // 2, (w - size) // 3
    clip = torch.from_numpy(np.stack(frames)[:, y0:y0 + size, x0:x0 + size]).to(device)
    return (clip.permute(0, 3, 1, 2).float() / 255)[None]


def release(weights: Path, suite: Path, after: str | None, device: str, out: Path) -> dict[str, str]:
    """Ship a run's weights: its metadata plus the device it ran on, the ``eval-video --suite``
    results measured for it (the JSON of ``--json``) and, when ``after`` is given, the release
    to ``--temporal auto`` (``temporal_auto``: the smoothing that runs after it)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(weights), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("status") != "trained":
        raise ValueError(f"{weights}: status {meta.get('status')!r}, expected a finished run")
    meta["device"] = device
    meta["eval_video"] = json.dumps(json.loads(suite.read_text()))
    if after is not None:
        meta["temporal_auto"] = after
    else:
        meta.pop("temporal_auto", None)
    tmp = out.with_suffix(".tmp")
    save_file(load_file(str(weights)), str(tmp), metadata=meta)
    tmp.replace(out)
    return meta


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.patch, args.batch, args.frames = 32, 2, 3
        args.photo_limit, args.clip_limit, args.val_size = args.photo_limit or 8, args.clip_limit or 8, 64
        args.steps, args.log_every = args.steps or 5, 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    try:
        spec = get_spec(args.model)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not spec.temporal:
        print(f"error: model {args.model!r} is not temporal; use python -m models train",
              file=sys.stderr)
        return 2
    if not (args.data / "splits" / "cbsd432.txt").exists():
        print(f"error: no training data under {args.data} (expected splits/cbsd432.txt)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    pkg_log = logging.getLogger("models")
    handler = logging.FileHandler(args.out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    pkg_log.addHandler(handler)
    if pkg_log.getEffectiveLevel() > logging.INFO:
        pkg_log.setLevel(logging.INFO)
    try:
        # explicit: an in-process caller may have turned gradients off globally (``models
        # eval`` does, and the lab tests run it in the same process before this)
        with torch.enable_grad():
            return _train(args, argv)
    finally:
        pkg_log.removeHandler(handler)
        handler.close()


def _train(args: argparse.Namespace, argv: list[str] | None) -> int:
    spec = get_spec(args.model)
    device = torch.device(args.device)
    amp = device.type == "cuda"
    if amp:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = spec.build()
    if args.init:
        init_from_per_frame(model, args.init)
    model = model.to(device, memory_format=torch.channels_last).train()
    if args.train_only:
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(args.train_only))
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    gen = torch.Generator(device=device).manual_seed(args.seed)

    def latest() -> None:  # the latest weights beside the checkpoint, for eval-video while it trains
        save_weights(model, args.out / f"{args.model}-latest.safetensors",
                     {"status": "checkpoint", "model": args.model, "steps": str(loop.step),
                      "minutes": f"{loop.elapsed / 60:.2f}"})

    loop = Loop(model, opt, Cosine(args.lr, warmup=1 if args.smoke else 100, rest=0.05),
                steps=args.steps or None, minutes=args.minutes, checkpoint=args.out / "checkpoint.pt",
                save_every=Every(minutes=args.ckpt_minutes), on_save=latest, log_every=args.log_every,
                state=lambda: {"gen": gen.get_state(), "args": vars(args)})
    if (ck := loop.resume(device)) is not None:
        gen.set_state(ck["gen"].cpu())

    clips = [] if args.no_clips else [c.strip() for c in args.clips.split(",") if c.strip()]
    source = SequenceSource(args.data, device, args.photo_limit, args.clip_limit, clips=clips)
    val = val_sequences(args.data, device, size=args.val_size,
                        length=4 if args.smoke else 10)
    val_still = still_val_sequences(args.data, device, size=args.val_size,
                                    length=4 if args.smoke else 10)
    motion = MotionConfig(static_prob=args.static_prob, object_prob=args.object_prob,
                          clip_prob=args.clip_prob)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %d params; batch %d x %d frames of %d px; budget %.1f min, steps %s",
             args.model, n_params, args.batch, args.frames, args.patch, args.minutes,
             args.steps or "unbounded")

    def validate_all() -> dict[str, float]:
        v = validate(model, val, 20.0, device, amp, spec.aligned)
        log.info("step %d val sigma20: psnr %.3f (last frame %.3f) flicker %.3f",
                 loop.step, v["psnr"], v["psnr_last"], v["flicker"])
        if val_still is not None:
            vs = validate(model, val_still, 20.0, device, amp, spec.aligned)
            log.info("step %d val still sigma20: psnr %.3f (last frame %.3f) flicker %.3f",
                     loop.step, vs["psnr"], vs["psnr_last"], vs["flicker"])
            v.update({f"still_{k}": x for k, x in vs.items()})
        return v

    def step_loss() -> torch.Tensor:
        with torch.no_grad():
            clean = source.batch(args.batch, args.frames, args.patch, gen, motion)
            noisy, smap = add_noise(clean, gen, args.sigma_max, args.camera, args.isp,
                                    args.jpeg_share)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = unroll(model, noisy, smap, args.detach, spec.aligned).float()
        loss = F.l1_loss(out, clean)
        if args.flicker_weight > 0:
            # the flicker measure itself: changes between outputs vs changes between clean frames
            loss = loss + args.flicker_weight * F.l1_loss(out[:, 1:] - out[:, :-1],
                                                          clean[:, 1:] - clean[:, :-1])
        return loss

    v0 = validate_all()
    loop.run(step_loss, [(Every(minutes=args.ckpt_minutes), validate_all)])
    v = validate_all()
    log.info("final step %d val sigma20: psnr %.3f (last frame %.3f) flicker %.3f (start %.3f / %.3f)",
             loop.step, v["psnr"], v["psnr_last"], v["flicker"], v0["psnr"], v0["flicker"])
    data_list = "\n".join(source.data_list)
    meta = {
        "status": "trained",
        "model": args.model,
        "command": command("python -m models.lab.train_temporal", argv),
        "data": json.dumps(source.data_list),
        "data_sha256": hashlib.sha256(data_list.encode()).hexdigest(),
        "steps": str(loop.step),
        "minutes": f"{loop.elapsed / 60:.2f}",
        "seed": str(args.seed),
        "init": "",
        "init_command": "",
        "noise": (f"gaussian sigma 0..{args.sigma_max:g} clipped to 8 bits; {args.camera:g} camera-like; "
                  f"{args.isp:g} camera_isp, one camera per sequence ({args.jpeg_share:g} of them "
                  "JPEG'd, one quality per sequence)"),
        **init_lineage(args.init),
        "training": json.dumps({k: str(v) for k, v in vars(args).items()}),
        "results": json.dumps({"val_davis_bus_sigma20": v, "val_at_init": v0}),
    }
    save_weights(model, args.out / f"{args.model}.safetensors", meta)
    if device.type == "cuda":
        log.info("peak GPU memory %.2f GiB", torch.cuda.max_memory_allocated(device) / 2**30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What every training run shares: the noise mix of its batches (``NoiseMix``,
``noisy_batch``), one training loop (the schedule, the step, the budget in steps or minutes,
the checkpoint at ``OUT/checkpoint.pt`` and the resume from it, the progress log) and the
lineage written into the weights' metadata.

The lab's trainers (``models.lab.train``, ``train_temporal``, ``train_estimator``) and the
camera fine-tune the product runs (``models.calibrate_tune``, through ``python -m stream
calibrate``) all use it, which is why it lives in ``models`` and not in ``models.lab``.
Each caller keeps only what is its own: the batch and the loss.

    loop = Loop(model, opt, Cosine(1e-3, warmup=200), steps=20000, checkpoint=out / "checkpoint.pt",
                save_every=Every(steps=500), state=lambda: {"gen": gen.get_state()})
    if (ck := loop.resume(device)) is not None:
        gen.set_state(ck["gen"])
    loop.run(lambda: F.l1_loss(model(*batch()), clean))
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import noise, noise_bank
from .noise_bank import NoiseBank

log = logging.getLogger("models.training")


@dataclass
class NoiseMix:
    """Fractions of each batch per noise kind; the rest is unclipped white Gaussian noise."""

    clipped: float = 0.15  # Gaussian, clipped and rounded to 8 bits (saved files)
    varying: float = 0.08  # Gaussian whose sigma varies smoothly across the patch
    camera: float = 0.07  # Poisson-Gaussian on a Bayer mosaic, demosaicked (half also JPEG'd)
    isp: float = 0.3  # a whole camera pipeline replayed (noise.camera_isp; half JPEG'd)
    low: float = 0.15  # share of the Gaussian sigmas drawn from 0..5 (light noise, clean frames)
    max_sigma: float = 75.0
    real: float = 0.0  # real pairs' noise replayed, scaled (models.noise_bank); needs a bank
    coarse: float = 0.0  # coarse colour-correlated Gaussian noise (noise.coarse; half JPEG'd)


def _sigmas(b: int, mix: NoiseMix, gen: torch.Generator) -> torch.Tensor:
    """Per-image Gaussian sigma in [0, 1] units: light noise (incl. none) for a ``low`` share,
    mostly the range that matters (0..60) and a tail to ``max_sigma`` for the rest."""
    u = torch.rand(b, generator=gen)
    v = torch.rand(b, generator=gen)
    high = torch.where(u < 0.85, u / 0.85 * 60, 60 + (u - 0.85) / 0.15 * (mix.max_sigma - 60))
    low = torch.where(u < 0.25, torch.zeros_like(u), u * 5)  # a quarter of them: no noise at all
    return torch.where(v < mix.low, low, high) / 255


def noisy_batch(clean: torch.Tensor, mix: NoiseMix, gen: torch.Generator,
                bank: NoiseBank | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a clean batch; returns (noisy, sigma map) both on clean's device.  The ``real``
    share needs ``bank``; without one it stays white Gaussian noise."""
    b, _, h, w = clean.shape
    dev = clean.device
    n_clip, n_var, n_cam, n_isp = (round(f * b) for f in (mix.clipped, mix.varying, mix.camera, mix.isp))
    n_real = round(mix.real * b) if bank is not None else 0
    n_coarse = round(mix.coarse * b)
    n_awgn = b - n_clip - n_var - n_cam - n_isp - n_real - n_coarse
    sig = _sigmas(b, mix, gen)
    outs, maps = [], []
    s0 = 0
    if n_awgn:
        n, m = noise.gaussian(clean[:n_awgn], sig[:n_awgn].to(dev))
        outs.append(n), maps.append(m)
    s0 = n_awgn
    if n_clip:
        n, m = noise.gaussian(clean[s0:s0 + n_clip], sig[s0:s0 + n_clip].to(dev), clip=True)
        outs.append(n), maps.append(m)
    s0 += n_clip
    if n_var:
        # A smooth random field between two sigmas: teaches the net to read the map per pixel.
        lo, hi = sig[s0:s0 + n_var], torch.rand(n_var, generator=gen) * mix.max_sigma / 255
        field = F.interpolate(torch.rand(n_var, 1, 3, 3, generator=gen), size=(h, w),
                              mode="bicubic", align_corners=True).clamp(0, 1)
        smap = (lo.view(-1, 1, 1, 1) + (hi - lo).view(-1, 1, 1, 1) * field).to(dev)
        n, m = noise.gaussian(clean[s0:s0 + n_var], smap)
        outs.append(n), maps.append(m)
    s0 += n_var
    if n_cam:
        shot = 10 ** (torch.rand(n_cam, generator=gen) * 2.3 - 4.0)  # 1e-4 .. 2e-2
        read = 10 ** (torch.rand(n_cam, generator=gen) * 1.6 - 3.2)  # 6e-4 .. 2.5e-2
        n, m = noise.camera(clean[s0:s0 + n_cam], shot.to(dev), read.to(dev))
        k = n_cam // 2
        if k:
            q = int(torch.randint(40, 96, (1,), generator=gen))
            n = torch.cat([noise.jpeg(n[:k], q), n[k:]])
        outs.append(n), maps.append(m)
    s0 += n_cam
    if n_isp:
        n, m = noise.camera_isp(clean[s0:s0 + n_isp].cpu(), gen)
        outs.append(n.to(dev)), maps.append(m.clamp_max(mix.max_sigma / 255).to(dev))
    s0 += n_isp
    if n_coarse:
        n, m = noise.coarse(clean[s0:s0 + n_coarse].cpu(), gen)
        outs.append(n.to(dev)), maps.append(m.clamp_max(mix.max_sigma / 255).to(dev))
    s0 += n_coarse
    if n_real:
        n, m = noise_bank.apply(clean[s0:], bank.sample(clean[s0:], gen), gen, max_sigma=mix.max_sigma)
        outs.append(n), maps.append(m)
    return torch.cat(outs), torch.cat(maps)


def add_mix_args(p: argparse.ArgumentParser) -> None:
    """The trainers' options for the real-noise share of the mix."""
    p.add_argument("--real-noise", type=Path, default=None, metavar="DIR",
                   help="real noisy/clean pairs (*_real / *_mean) whose noise (tune half only) is replayed "
                        "on the training photos, scaled 0.7..6 times (models.noise_bank)")
    p.add_argument("--real", type=float, default=0.2, help="share of each batch with that noise (with --real-noise)")
    p.add_argument("--isp", type=float, default=None,
                   help=f"share of the replayed camera pipeline (default {NoiseMix.isp}, 0.2 with --real-noise)")
    p.add_argument("--coarse", type=float, default=NoiseMix.coarse,
                   help="share of coarse colour-correlated Gaussian noise (noise.coarse)")


def mix_from_args(args: argparse.Namespace) -> tuple[NoiseMix, NoiseBank | None]:
    """The mix and the bank the options ask for (``args.low`` included)."""
    if args.real_noise is None:
        return NoiseMix(low=args.low, coarse=args.coarse, **({} if args.isp is None else {"isp": args.isp})), None
    from .data import pair_paths

    bank = NoiseBank.from_pairs(pair_paths(args.real_noise, "tune"))
    return NoiseMix(low=args.low, real=args.real, coarse=args.coarse, isp=0.2 if args.isp is None else args.isp), bank


def bank_metadata(bank: NoiseBank | None, args: argparse.Namespace) -> dict[str, str]:
    if bank is None:
        return {}
    return {"real_noise": f"{len(bank)} pairs of {args.real_noise} (tune half, models.data.pair_paths), "
                          f"sha256[:16] {bank.digest}"}


@dataclass(frozen=True)
class Cosine:
    """Linear warm-up over ``warmup`` steps, then a cosine from ``lr`` to ``lr * rest`` at the
    end of the run, never below ``lr * floor``."""

    lr: float
    warmup: int = 1
    rest: float = 0.0
    floor: float = 0.0

    def __call__(self, step: int, progress: float) -> float:
        cos = 0.5 * (1 + math.cos(math.pi * progress))
        lr = self.lr * min(1.0, (step + 1) / self.warmup) * (self.rest + (1 - self.rest) * cos)
        return max(lr, self.lr * self.floor)


@dataclass(frozen=True)
class Every:
    """A period in optimizer steps or in minutes of wall clock."""

    steps: int | None = None
    minutes: float | None = None


class Loop:
    """Runs optimizer steps until ``steps`` are done or ``minutes`` have passed, whichever
    comes first (progress, which drives the schedule, is the larger share of the two).

    With ``fix_steps`` a minutes budget becomes a step count once the speed is known (measured
    over steps 20..60; the schedule waits until then), so a resumed run keeps its schedule.
    ``checkpoint`` is written every ``save_every`` and at the end, and read back by
    ``resume``: model, optimizer, step, total steps, minutes done, and ``state()``, the
    caller's own (random generators, data samplers).  The loss is logged every ``log_every``
    steps (None: never)."""

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, schedule: Cosine, *,
                 steps: int | None = None, minutes: float | None = None, fix_steps: bool = False,
                 clip: float | None = 1.0, checkpoint: Path | None = None,
                 save_every: Every | None = None, state: Callable[[], dict] = dict,
                 on_save: Callable[[], None] | None = None, log_every: int | None = 100) -> None:
        self.model, self.opt, self.schedule = model, opt, schedule
        self.total, self.budget, self.fix_steps = steps, None if minutes is None else minutes * 60, fix_steps
        self.clip, self.path, self.save_every = clip, checkpoint, save_every
        self.state, self.on_save, self.log_every = state, on_save, log_every
        self.step, self.elapsed = 0, 0.0
        self.loss: torch.Tensor | None = None  # the last step's, detached
        self.lr = opt.param_groups[0]["lr"]
        self._t0 = time.perf_counter()  # this invocation's start (``run_minutes``)

    @property
    def run_minutes(self) -> float:
        """Minutes since this loop was made (this invocation, not the resumed ones before)."""
        return (time.perf_counter() - self._t0) / 60

    def resume(self, map_location: torch.device | str = "cpu") -> dict | None:
        """Continue from ``checkpoint`` when it exists; returns it (for the caller's state) or
        None.  The loop's ``steps``, when given, override the total the checkpoint was heading
        for (so the same command with more steps extends a run)."""
        if self.path is None or not self.path.exists():
            return None
        ck = torch.load(self.path, map_location=map_location, weights_only=False)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.elapsed = ck["step"], ck.get("elapsed", 0.0)
        self.total = self.total or ck.get("total")
        log.info("resumed from %s at step %d of %s (%.1f min done)", self.path, self.step,
                 self.total, self.elapsed / 60)
        return ck

    def save(self) -> None:
        """Write the checkpoint (atomically: a run killed while saving keeps the last one)."""
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                        "total": self.total, "elapsed": self.elapsed, **self.state()}, tmp)
            tmp.replace(self.path)
        if self.on_save is not None:
            self.on_save()

    def progress(self) -> float | None:
        """Share of the run done, or None while a minutes budget waits for its step count."""
        shares = []
        if self.total is not None:
            shares.append(self.step / self.total if self.total else 1.0)
        if self.budget is not None and not self.fix_steps:
            shares.append(self.elapsed / self.budget)
        return max(shares) if shares else None

    def run(self, loss_fn: Callable[[], torch.Tensor],
            hooks: Sequence[tuple[Every, Callable[[], object]]] = ()) -> None:
        """Step until done: ``loss_fn()`` makes a batch and returns its loss; each hook runs
        after the step that ends its period, the checkpoint after the hooks and at the end.
        Gradients are on even where the caller turned them off (``models eval`` does, and
        the lab tests run it in the same process)."""
        with torch.enable_grad():
            self._run(loss_fn, [*hooks, *([(self.save_every, self.save)] if self.save_every else [])])
        self.save()

    def _run(self, loss_fn: Callable[[], torch.Tensor], hooks: list[tuple[Every, Callable[[], object]]]) -> None:
        now = time.perf_counter()
        start = now - self.elapsed
        last = [now] * len(hooks)  # one clock for all: hooks with the same period run together
        log_step, log_t, loss_sum = self.step, now, 0.0
        rate_t = None
        params = [p for g in self.opt.param_groups for p in g["params"]]
        while True:
            self.elapsed = time.perf_counter() - start
            progress = self.progress()
            if progress is not None:
                if progress >= 1:
                    break
                self.lr = self.schedule(self.step, progress)
                for g in self.opt.param_groups:
                    g["lr"] = self.lr
            loss = loss_fn()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(params, self.clip)
            self.opt.step()
            self.step += 1
            self.loss = loss.detach()
            loss_sum += self.loss  # a tensor: reading it syncs the GPU, so only when logging
            if self.fix_steps and self.total is None:
                if self.step == 20:
                    rate_t, rate_step = time.perf_counter(), self.step
                elif self.step == 60 and rate_t is not None:
                    rate = (self.step - rate_step) / (time.perf_counter() - rate_t)
                    self.total = int(rate * (self.budget - (time.perf_counter() - start))) + self.step
                    log.info("%.1f steps/s -> %d steps in %.1f min", rate, self.total, self.budget / 60)
            now = time.perf_counter()
            if self.log_every and self.step - log_step >= self.log_every:
                log.info("step %d/%s loss %.5f lr %.2e %.1f steps/s (%.1f min)", self.step, self.total,
                              float(loss_sum) / (self.step - log_step), self.lr,
                              (self.step - log_step) / (now - log_t), (now - start) / 60)
                log_step, log_t, loss_sum = self.step, now, 0.0
            for i, (every, fn) in enumerate(hooks):
                if ((every.steps and self.step % every.steps == 0)
                        or (every.minutes is not None and now - last[i] > 60 * every.minutes)):
                    self.elapsed = time.perf_counter() - start
                    fn()
                    last[i] = now
        self.elapsed = time.perf_counter() - start


def command(prog: str, argv: list[str] | None) -> str:
    """The command line that reproduces a run (``argv`` as given, else the process's)."""
    return f"{prog} " + shlex.join(sys.argv[1:] if argv is None else argv)


def init_lineage(path: Path | None) -> dict[str, str]:
    """What the weights a run started from are: the command that made them (and theirs),
    their file hash, their own lineage and results, and the noise reading they were trained
    for; {} for a run from scratch."""
    if path is None:
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    out = {"init": str(path),
           "init_command": meta.get("command", "") + (f" (then: {meta['init_command']})"
                                                      if meta.get("init_command") else ""),
           "init_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    for key, name in (("lineage", "init_lineage"), ("results", "init_results"), ("estimator", "estimator")):
        # the estimator: the noise reading the product gives the model
        # (``models.estimate.estimator_for``), which a continuation keeps
        if meta.get(key):
            out[name] = meta[key]
    return out


def save_weights(model: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """The model's tensors (float32, CPU) as safetensors with ``metadata``, written atomically
    (a reader of ``-latest`` never sees half a file)."""
    from safetensors.torch import save_file

    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)
    log.info("wrote %s", path)

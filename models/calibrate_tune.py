"""Fine-tune a denoiser on one camera's (noisy, reference) images without forgetting the rest.

Each step mixes three terms (after Noise-DA, arXiv 2406.18516: the real camera's own data
beside synthetic pairs, and CLAIO's continual restoration: replay plus distillation):

- the camera's crops: L1 to the reference (the clean mean of a pair, or a still segment's
  temporal mean), the noise map either the blind estimate of the whole image (what ``--sigma
  auto`` gives) or the profile's NLF read per pixel (``nlf_share`` of them), so the tuned model
  takes both and the better one can be chosen after; most of them (``transplant``) carry the
  camera's noise moved onto other photos (``transplant_crops``), so the tune learns the
  noise and not the few scenes it was measured on;
- replayed synthetic pairs (``models.training.noisy_batch`` with its ``NoiseMix``) on clean
  photos (CBSD432 when ../shared/data is there, else the camera's own references): L1 to
  the clean crop;
- distillation: L1 between the tuned and the original model's outputs on those synthetic
  inputs, so the tuned model stays the original on noise it is not shown again.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import noise
from .calibrate import Measurement, Nlf, Sample, nlf_map
from .metrics import psnr
from .training import Cosine, Every, Loop, NoiseMix, noisy_batch

log = logging.getLogger("models.calibrate")


@dataclass(frozen=True)
class TuneConfig:
    steps: int = 1500
    batch: int = 8  # camera crops per step
    transplant: int = 6  # of which: the camera's noise moved onto other photos
    replay: int = 4  # synthetic crops per step
    patch: int = 64
    lr: float = 5e-4
    distill: float = 0.5
    nlf_share: float = 0.5
    # recipe options measured and not taken (README, "Searching the recipe"): transplanted
    # noise scaled by a log-uniform factor in [1/j, j]; replay white noise of sigma floor..60 only
    level_jitter: float = 1.0
    replay_floor: float | None = None
    seed: int = 0
    # tune the camera crops through the blend with the 2 x 2 phase split that ``--coarse-noise
    # auto`` runs on coarse noise (the sub-images told ``split_factor`` times the level):
    # measured on the PolyU cameras with 1.4 for ``fast``'s reading: +0.15 dB against the plain
    # tune's +0.19 (README, "After the phase split"); an option of ``calibrate_search``
    coarse: bool = False
    split_factor: float = 1.0


@dataclass
class Prepared:
    """A sample as tensors, with its two noise maps (0..1 units)."""

    noisy: torch.Tensor  # (3, H, W) float 0..1
    reference: torch.Tensor
    estimate: float
    nlf: torch.Tensor  # (1, H, W)
    mask: np.ndarray | None


def prepare(samples: list[Sample], m: Measurement, estimator: Callable[[np.ndarray], float]) -> list[Prepared]:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div(255)

    return [Prepared(t(s.noisy), t(s.reference), float(estimator(s.noisy)) / 255,
                     torch.from_numpy(nlf_map(s.noisy, m.nlf))[None] / 255, s.mask) for s in samples]


def _augment(x: torch.Tensor, a: int) -> torch.Tensor:
    if a & 1:
        x = x.flip(-1)
    return torch.rot90(x, a >> 1, dims=(-2, -1))


def camera_crops(items: list[Prepared], n: int, size: int, nlf_share: float,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy, reference, map) crops, (n, 3|1, size, size); crops of a clip lie in its still
    pixels (up to 20 tries each, then the stillest tried)."""
    xs, ys, ms = [], [], []
    for _ in range(n):
        it = items[int(torch.randint(len(items), (1,), generator=gen))]
        _, h, w = it.noisy.shape
        s = min(size, h, w)
        best, best_share = (0, 0), -1.0
        for _ in range(20):
            y0 = int(torch.randint(h - s + 1, (1,), generator=gen))
            x0 = int(torch.randint(w - s + 1, (1,), generator=gen))
            share = 1.0 if it.mask is None else float(it.mask[y0:y0 + s, x0:x0 + s].mean())
            if share > best_share:
                best, best_share = (y0, x0), share
            if share >= 0.98:
                break
        y0, x0 = best
        a = int(torch.randint(8, (1,), generator=gen))
        sl = (slice(None), slice(y0, y0 + s), slice(x0, x0 + s))
        use_nlf = float(torch.rand(1, generator=gen)) < nlf_share
        smap = it.nlf[sl] if use_nlf else torch.full((1, s, s), it.estimate)
        xs.append(_augment(it.noisy[sl], a)), ys.append(_augment(it.reference[sl], a))
        ms.append(_augment(smap, a))
    return torch.stack(xs), torch.stack(ys), torch.stack(ms)


def transplant_crops(items: list[Prepared], replay: list[torch.Tensor], nlf: Nlf, n: int, size: int,
                     nlf_share: float, gen: torch.Generator, jitter: float = 1.0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The camera's own noise on other pictures: a noise crop (noisy - reference) of the
    camera, rescaled per pixel and channel by its NLF from the brightness it was measured at
    to the clean crop's, added to a clean photo crop and rounded to 8 bits.  The camera's
    spatial and colour structure comes along; the scenes' content does not (a dozen scenes
    are learnt by heart otherwise: tuning on the camera's crops alone lost 0.3 dB on held-out
    scenes of the same camera while gaining 0.8 on its own)."""
    x, y, est = camera_crops(items, n, size, 0.0, gen)
    clean = clean_crops(replay, n, size, gen)
    curve = nlf.filled()
    d = (x - y).numpy()
    ratio = np.empty_like(d)
    for c in range(3):
        at_clean = np.interp(clean[:, c].numpy() * 255, nlf.centres, curve[c])
        at_ref = np.interp(y[:, c].numpy() * 255, nlf.centres, curve[c])
        ratio[:, c] = at_clean / np.maximum(at_ref, 0.5)
    gain = (np.exp((torch.rand(n, generator=gen).numpy() * 2 - 1) * np.log(jitter)) if jitter > 1
            else np.ones(n)).astype(np.float32)
    moved = d * ratio * gain.reshape(n, 1, 1, 1)
    noisy = (torch.from_numpy(moved) + clean).clamp(0, 1).mul(255).round().div(255)
    maps = []
    for i in range(n):
        if float(torch.rand(1, generator=gen)) < nlf_share:
            u8 = (noisy[i].permute(1, 2, 0) * 255).round().byte().numpy()
            maps.append(torch.from_numpy(nlf_map(u8, nlf))[None] / 255 * float(gain[i]))
        else:  # the blind estimate, scaled as the noise was
            scale = float(np.sqrt((moved[i] ** 2).mean() / max((d[i] ** 2).mean(), 1e-12)))
            maps.append(est[i] * scale)
    return noisy.float(), clean, torch.stack(maps)


def replay_images(measurement: Measurement) -> tuple[list[torch.Tensor], str]:
    """Clean photos for the replayed synthetic pairs: CBSD432 where the project's data is,
    else the camera's own references (a user's machine)."""
    from .data import DEFAULT_DATA, read_rgb, split_paths

    try:
        paths = split_paths(DEFAULT_DATA, "cbsd432")
        return [torch.from_numpy(read_rgb(p)).permute(2, 0, 1).contiguous() for p in paths], "CBSD432"
    except (FileNotFoundError, OSError, ValueError):
        refs = [torch.from_numpy(np.ascontiguousarray(s.reference)).permute(2, 0, 1).contiguous()
                for s in measurement.samples]
        return refs, "the calibration's own references"


def clean_crops(images: list[torch.Tensor], n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        _, h, w = img.shape
        s = min(size, h, w)
        y0 = int(torch.randint(h - s + 1, (1,), generator=gen))
        x0 = int(torch.randint(w - s + 1, (1,), generator=gen))
        a = int(torch.randint(8, (1,), generator=gen))
        out.append(_augment(img[:, y0:y0 + s, x0:x0 + s], a))
    return torch.stack(out).float().div(255)


def white_above(clean: torch.Tensor, floor: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """White noise of sigma ``floor``..60 (0..255 units), half of it clipped to 8 bits."""
    b = clean.shape[0]
    sig = (floor + torch.rand(b, generator=gen) * (60 - floor)) / 255
    a, ma = noise.gaussian(clean[:b // 2], sig[:b // 2])
    c, mc = noise.gaussian(clean[b // 2:], sig[b // 2:], clip=True)
    return torch.cat([a, c]), torch.cat([ma, mc])


def finetune(model: torch.nn.Module, items: list[Prepared], replay: list[torch.Tensor],
             nlf: Nlf, cfg: TuneConfig, on_step: Callable[[int, float], None] | None = None
             ) -> tuple[torch.nn.Module, dict[str, float]]:
    """Tune a copy of ``model`` (the original stays as the distillation teacher) in the
    shared loop (``models.training``); returns the tuned model (eval mode) and {steps,
    minutes, loss}."""
    import copy

    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    mix = NoiseMix()

    def step_loss() -> torch.Tensor:
        x, y, m = camera_crops(items, cfg.batch - cfg.transplant, cfg.patch, cfg.nlf_share, gen)
        if cfg.transplant:
            xt, yt, mt = transplant_crops(items, replay, nlf, cfg.transplant, cfg.patch, cfg.nlf_share, gen,
                                          cfg.level_jitter)
            x, y, m = torch.cat([x, xt]), torch.cat([y, yt]), torch.cat([m, mt])
        out = student(x, m)
        if cfg.coarse:
            out = 0.5 * (out + split_forward(student, x, m * cfg.split_factor))
        loss = F.l1_loss(out, y)
        if cfg.replay:
            clean = clean_crops(replay, cfg.replay, cfg.patch, gen)
            noisy, smap = (noisy_batch(clean, mix, gen) if cfg.replay_floor is None
                           else white_above(clean, cfg.replay_floor, gen))
            out = student(noisy, smap)
            loss = loss + F.l1_loss(out, clean)
            if cfg.distill:
                with torch.no_grad():
                    target = teacher(noisy, smap)
                loss = loss + cfg.distill * F.l1_loss(out, target)
        return loss

    loss_avg = 0.0

    def after_step() -> None:
        nonlocal loss_avg
        value = float(loop.loss)
        loss_avg = 0.98 * loss_avg + 0.02 * value if loop.step > 1 else value
        if on_step is not None:
            on_step(loop.step, loss_avg)

    loop = Loop(student, opt, Cosine(cfg.lr, warmup=50, floor=0.01), steps=cfg.steps, log_every=None)
    loop.run(step_loss, [(Every(steps=1), after_step)])
    return student.eval(), {"steps": loop.step, "minutes": loop.run_minutes, "loss": loss_avg}


def split_forward(model: torch.nn.Module, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``model`` on the four 2 x 2 phase sub-images of (B, 3, H, W) ``x`` (H, W even) with
    their part of the (B, 1, H, W) map, put back together: ``engines.phase_split.run_split``
    in torch, differentiable."""
    b, _, h, w = x.shape

    def phases(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (4B, C, H/2, W/2)
        c = t.shape[1]
        return F.pixel_unshuffle(t, 2).view(b, c, 4, h // 2, w // 2).transpose(1, 2).reshape(4 * b, c, h // 2, w // 2)

    y = model(phases(x), phases(m)).view(b, 4, 3, h // 2, w // 2).transpose(1, 2)
    return F.pixel_shuffle(y.reshape(b, 12, h // 2, w // 2), 2)


def run_model(model: torch.nn.Module, noisy: torch.Tensor, smap: torch.Tensor | float) -> torch.Tensor:
    """(3, H, W) in 0..1 -> the 8-bit output in 0..1."""
    x = noisy[None]
    m = smap[None] if isinstance(smap, torch.Tensor) else torch.full_like(x[:, :1], smap)
    with torch.inference_mode():
        return model(x, m)[0].clamp(0, 1).mul(255).round().div(255)


def _masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: np.ndarray | None) -> float:
    if mask is None:
        return psnr(a, b)
    sel = torch.from_numpy(mask)
    return psnr(a[:, sel], b[:, sel])


def gains(base: torch.nn.Module, tuned: torch.nn.Module, items: list[Prepared], limit: int = 8) -> dict[str, float]:
    """Mean PSNR on (up to ``limit`` of) the calibration's own images, which the tune has seen:
    noisy, the original model on the blind estimate, the tuned one on the estimate and on the
    NLF map; held-out numbers come from ``models.lab.calibrate_eval``."""
    rows: dict[str, list[float]] = {"noisy": [], "base": [], "tuned_estimate": [], "tuned_nlf": []}
    step = max(1, len(items) // limit)
    for it in items[::step][:limit]:
        rows["noisy"].append(_masked_psnr(it.noisy, it.reference, it.mask))
        rows["base"].append(_masked_psnr(run_model(base, it.noisy, it.estimate), it.reference, it.mask))
        rows["tuned_estimate"].append(_masked_psnr(run_model(tuned, it.noisy, it.estimate), it.reference, it.mask))
        rows["tuned_nlf"].append(_masked_psnr(run_model(tuned, it.noisy, it.nlf), it.reference, it.mask))
    return {f"seen_{k}": round(float(np.mean(v)), 3) for k, v in rows.items()}


def forgetting(base: torch.nn.Module, tuned: torch.nn.Module, sigma: float = 25.0,
               limit: int = 4) -> dict[str, float]:
    """CBSD68 at ``sigma`` (first ``limit`` photos, 256 px crops; {} without the project's
    data): the original and the tuned model, told the level."""
    from .data import DEFAULT_DATA, read_rgb, split_paths

    try:
        paths = split_paths(DEFAULT_DATA, "cbsd68")[:limit]
    except (FileNotFoundError, OSError):
        return {}
    gen = torch.Generator().manual_seed(1234)
    a, b = [], []
    for p in paths:
        x = torch.from_numpy(read_rgb(p)[:256, :256]).permute(2, 0, 1).float().div(255)
        n = x + torch.randn(x.shape, generator=gen) * sigma / 255
        a.append(psnr(run_model(base, n, sigma / 255), x))
        b.append(psnr(run_model(tuned, n, sigma / 255), x))
    return {f"cbsd68_s{sigma:g}_first{limit}_base": round(float(np.mean(a)), 3),
            f"cbsd68_s{sigma:g}_first{limit}_tuned": round(float(np.mean(b)), 3)}

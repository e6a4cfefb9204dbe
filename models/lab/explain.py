"""``python -m models explain``: pictures of what the denoiser decided was noise.

Writes one PNG with four panels: the noisy input, the denoised output, the removed noise
(input minus output, amplified around mid-grey), and the noise level the model was told -- or,
for a gated model (``fast``), its gate: per pixel, how much of its own prediction it used
(black: the input passed through; white: replaced).  With ``--clean`` it adds noise to the
clean image first (``--sigma`` of white noise, ``--camera shot,read`` for the plain camera
model, ``--camera isp`` for the replayed camera pipeline) so the result can be compared with
the truth.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from ..data import read_rgb
from ..estimate import estimator_for
from ..metrics import psnr
from ..noise import camera, camera_isp
from ..registry import UnknownModelError, create_model
from .evaluate import denoise


def removed_noise_view(noisy: np.ndarray, out: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """(noisy - out) * gain around 128: grain means noise; shapes mean the model took detail."""
    diff = noisy.astype(np.float32) - out.astype(np.float32)
    return np.clip(128 + gain * diff, 0, 255).astype(np.uint8)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img.copy())
    cv2.rectangle(img, (0, 0), (img.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(img, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models explain", description=__doc__.splitlines()[0])
    p.add_argument("image", type=Path)
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--model", default="base")
    p.add_argument("--clean", action="store_true", help="the image is clean: add noise first")
    p.add_argument("--sigma", default="auto", help="noise std 0..255, or auto (estimated)")
    p.add_argument("--camera", default=None,
                   help="shot,read: camera-noise synthesis instead of white noise; isp: the replayed camera pipeline")
    p.add_argument("--gain", type=float, default=4.0, help="amplification of the removed-noise panel")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        model = create_model(args.model)
        img = read_rgb(args.image)
    except (UnknownModelError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clean = img if args.clean else None
    if args.clean:
        if args.camera:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
            gen = torch.Generator().manual_seed(args.seed)
            if args.camera == "isp":
                n, _ = camera_isp(x, gen, jpeg_share=0.0)
            else:
                shot, read = (float(v) for v in args.camera.split(","))
                n, _ = camera(x, shot, read, generator=gen)
            noisy = (n[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        else:
            s = 25.0 if args.sigma == "auto" else float(args.sigma)
            rng = np.random.default_rng(args.seed)
            noisy = np.clip(np.round(img + rng.normal(0, s, img.shape)), 0, 255).astype(np.uint8)
    else:
        noisy = img
    sigma = estimator_for(args.model)(noisy) if args.sigma == "auto" else float(args.sigma)
    tail: list[torch.Tensor] = []
    hook = model.tail.register_forward_hook(lambda mod, inp, out: tail.append(out))
    out = denoise(model, noisy.astype(np.float32), sigma)
    hook.remove()
    auto = " (auto)" if args.sigma == "auto" else ""
    if model.cfg.gate:
        r = model.cfg.unshuffle
        gate = torch.sigmoid(torch.nn.functional.pixel_shuffle(tail[0][:, 3 * r * r:], r))
        g = gate[0, 0, : noisy.shape[0], : noisy.shape[1]].numpy()
        map_view = np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)
        map_label = f"gate (white: changed), sigma {sigma:.1f}{auto}"
    else:
        smap = np.full(noisy.shape[:2], sigma, np.float32)
        map_view = cv2.applyColorMap(np.clip(smap * 255 / 50, 0, 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
        map_label = f"noise map: sigma {sigma:.1f}{auto}"
    note = f" PSNR {psnr(noisy, clean, 255.0):.1f} dB" if clean is not None else ""
    note_out = f" PSNR {psnr(out, clean, 255.0):.1f} dB" if clean is not None else ""
    panels = [
        _label(noisy, "noisy input" + note),
        _label(out, f"denoised ({args.model})" + note_out),
        _label(removed_noise_view(noisy, out, args.gain), f"removed noise x{args.gain:g}"),
        _label(map_view, map_label),
    ]
    grid = np.concatenate([np.concatenate(panels[:2], 1), np.concatenate(panels[2:], 1)], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid[..., ::-1])
    print(f"wrote {args.out}: sigma {sigma:.1f}{note_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

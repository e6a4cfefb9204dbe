"""``python -m models train|eval|list|eval-video|...``: the lab's commands (``models.lab``) and ``list``.

A user's mistake (``models.errors.UserError``, an unknown model, a missing file) is one line on
stderr and exit 2, for every command alike."""
from __future__ import annotations

import sys

from .errors import UserError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": "lab.train", "eval": "lab.evaluate", "list": "listing", "eval-video": "lab.eval_video",
                "noise-fit": "lab.noise_fit", "explain": "lab.explain", "train-estimator": "lab.train_estimator",
                "eval-downstream": "lab.eval_downstream", "wiener-curve": "lab.wiener_curve"}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m models {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(f"models.{commands[argv[0]]}")
    try:
        return module.main(argv[1:])
    except (UserError, FileNotFoundError) as exc:  # a bug keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m models train|eval|list|eval-video|...``: the lab's commands (``models.lab``) and ``list``."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": "lab.train", "eval": "lab.evaluate", "list": "listing", "eval-video": "lab.eval_video",
                "noise-fit": "lab.noise_fit", "explain": "lab.explain", "train-estimator": "lab.train_estimator",
                "eval-downstream": "lab.eval_downstream"}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m models {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(f"models.{commands[argv[0]]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

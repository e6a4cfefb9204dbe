"""A progress bar (fps, ETA) on a terminal; nothing when stderr is not one or with --quiet."""
from __future__ import annotations

import sys
from typing import Any

from .frame import Frame


class Progress:
    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr,
                            smoothing=0.1, leave=False)

    def update(self, frame: Frame) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

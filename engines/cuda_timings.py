"""Alias of ``engines.gpu_check`` (the name models/gpu_job.sh calls)."""
from __future__ import annotations

import sys

from .gpu_check import main

if __name__ == "__main__":
    sys.exit(main())

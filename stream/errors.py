"""User-facing errors and the exit codes every command line shares.

A ``UserError`` (``models.errors``, shared by the three packages) is printed as one line
(``error: ...``) and the command exits 2; a bug keeps its traceback.  ``EngineError``,
``CalibrationError``, ``CameraError`` and ``VirtualCameraError`` derive from it.
"""
from __future__ import annotations

import logging
import sys

from models.errors import UserError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "UserError", "configure_logging"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def configure_logging(verbose: int) -> None:
    """``-v`` (repeatable) in every command line: -v info (e.g. per-stage ms), -vv debug."""
    level = logging.WARNING - 10 * min(max(verbose, 0), 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)

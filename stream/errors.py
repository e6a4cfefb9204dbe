"""User-facing errors and the exit codes every command line shares.

A ``UserError`` is printed as one line (``error: ...``) and the command exits 2; a bug keeps
its traceback.  ``EngineError`` (engines) and ``CameraError``/``VirtualCameraError`` are
turned into, or derive from, this one type before they reach a command line.
"""
from __future__ import annotations

import logging
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake in what the user asked for (bad path, unknown codec...), not a bug."""


def configure_logging(verbose: int) -> None:
    """``-v`` (repeatable) in every command line: -v info (e.g. per-stage ms), -vv debug."""
    level = logging.WARNING - 10 * min(max(verbose, 0), 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)

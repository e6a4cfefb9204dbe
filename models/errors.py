"""The one error type for a user's mistake (a bad path, an unknown profile, a backend that
cannot run here): every command line (``python -m stream``, ``engines``, ``models``) prints it
as one line, ``error: ...``, and exits 2; anything else is a bug and keeps its traceback.

It lives in ``models``, the bottom layer, so that all three packages raise the same type:
``stream.errors`` re-exports it, ``engines.EngineError`` and ``models.calibrate``'s
``CalibrationError`` derive from it (and from ValueError, as they did).
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad path, unknown codec...), not a bug."""

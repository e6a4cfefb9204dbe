"""User-facing errors: the command line prints their message as one line and exits 2."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad path, unknown codec...), not a bug."""

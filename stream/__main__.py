"""``python -m stream``: see stream/cli.py."""
from __future__ import annotations

import logging
import os
import sys

try:
    from .cli import main
    from .errors import EXIT_INTERRUPTED
except KeyboardInterrupt:  # Ctrl-C while the libraries load: no traceback
    print("interrupted", file=sys.stderr)
    os._exit(130)


def leave(code: int) -> None:
    """Exit with ``code``.  An interrupted run (Ctrl-C, SIGTERM) has finalised its outputs by
    now; what is left is the interpreter's teardown, in which a library's C++ thread pool
    (OpenCV's, ONNX Runtime's) stopped in mid-job can abort the process: 2 to 3 of 40 runs
    interrupted mid-way ended with -6 or -11 instead of 130.  So that teardown is skipped."""
    if code != EXIT_INTERRUPTED:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (video to stdout) has nothing to keep
            pass
    os._exit(code)


if __name__ == "__main__":
    leave(main())

"""Network inputs and outputs: addresses checked before FFmpeg sees them, and an open that
Ctrl-C, SIGTERM and ``--timeout`` can end."""
from __future__ import annotations

import logging
import threading
from typing import Any

import av

from .avutil import av_message
from .errors import UserError

log = logging.getLogger(__name__)


def is_url(spec: str) -> bool:
    return "://" in spec


# Schemes whose address has no default port (http, rtsp, rtmp... have one).
PORT_SCHEMES = ("udp", "rtp", "srt", "tcp")
DEFAULT_TIMEOUT = 10.0  # seconds; --timeout


def check_url(spec: str) -> None:
    """UserError for an address FFmpeg would only answer "Invalid argument" to."""
    from urllib.parse import urlsplit

    scheme = spec.split("://", 1)[0].lower()
    if scheme not in PORT_SCHEMES:
        return
    try:
        port = urlsplit(spec).port
    except ValueError:
        raise UserError(f"{spec}: the port is not a number in 0..65535; expected "
                        f"{scheme}://HOST:PORT, e.g. {scheme}://127.0.0.1:5000") from None
    if port is None:
        raise UserError(f"{spec}: no port given; expected {scheme}://HOST:PORT, e.g. "
                        f"{scheme}://127.0.0.1:5000")


def open_url(spec: str, timeout: float) -> Any:
    """``av.open`` for a network input, on a helper thread: FFmpeg's wait for a silent server
    holds the calling thread in C, where Ctrl-C and SIGTERM cannot reach it.  Here the main
    thread waits in short steps, so KeyboardInterrupt lands at once (the helper gives up by
    itself after ``timeout`` seconds, FFmpeg's interrupt callback)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["container"] = av.open(spec, timeout=(timeout, timeout),
                                       options={"rw_timeout": str(int(timeout * 1e6))},
                                       metadata_errors="replace")
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="stream-open", daemon=True)
    log.info("opening %s (waiting up to %g s)", spec, timeout)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["container"]


def open_error(spec: str, exc: BaseException, timeout: float) -> UserError:
    if isinstance(exc, av.error.ExitError):  # FFmpeg's interrupt callback: the timeout ran out
        return UserError(f"cannot read {spec}: nothing received within {timeout:g} s "
                         "(--timeout S waits longer)")
    hint = ""
    if is_url(spec) and "Protocol not found" in str(exc):
        hint = f" (this FFmpeg build has no {spec.split(':', 1)[0]} support)"
    return UserError(f"cannot read {spec}: {av_message(exc)}{hint}")

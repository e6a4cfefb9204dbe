"""Torch's CPU thread pool for the small steps that run beside the engine.

A frame's smaller torch steps (the Wiener pass, the learned noise reading, the ``light`` and
``strong`` smoothing) run between the engine's calls while the decoder, the encoder and ONNX
Runtime's own threads keep the cores busy.  Torch's pool then waits at every operation for the
thread the busy core holds up: beside such work the pool made these steps 2 to 30 times
slower than one thread (the Wiener pass at 640x360 on two threads: 63 ms against 26 on one
beside a busy loop, 425 ms against 28 beside other jobs of this project at lower priority;
the ``light`` smoothing 30 times beside ONNX Runtime's spinning threads).  Work that splits
into parts (the Wiener pass's strips) runs its parts on worker threads instead, each with
torch on one thread: one wait a frame rather than one an operation, so an idle machine's
cores are used and a busy core delays only its own part.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch


@contextmanager
def one_torch_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block with torch on one CPU thread (``enabled``), then restore the pool."""
    if not enabled:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # a forked child has none of the parent's threads: it starts its own


os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="torch-part")
    return _POOL


def _alone(parts: Sequence[Callable[[], None]]) -> None:
    torch.set_num_threads(1)  # this worker's own setting (OpenMP keeps one per thread)
    for part in parts:
        part()


def workers() -> int:
    """How many parts ``run_parts`` runs at once: torch's pool size, as the caller set it."""
    return max(1, torch.get_num_threads())


def run_parts(parts: Sequence[Callable[[], None]]) -> None:
    """Run ``parts`` with torch on one thread in each, ``workers()`` of them at once (the first
    share on the caller's thread); returns when all are done, and raises a part's error."""
    n = min(len(parts), workers())
    with one_torch_thread():
        shares = [parts[i::n] for i in range(n)] if n > 1 else [parts]
        futures = [_pool().submit(_alone, share) for share in shares[1:]]
        try:
            _alone(shares[0])
        finally:
            for future in futures:
                future.result()

"""models.threads: small torch work beside the engine, on one torch thread a part."""
from __future__ import annotations

import threading

import pytest
import torch

from models.threads import one_torch_thread, run_parts


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_parts_run_once_each_side_by_side_on_one_torch_thread(pool: int) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(pool)
    seen: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def part(i: int) -> None:
        with lock:
            seen.append((i, threading.get_ident(), torch.get_num_threads()))

    try:
        run_parts([lambda i=i: part(i) for i in range(7)])
        assert torch.get_num_threads() == pool  # the caller's pool size is back
    finally:
        torch.set_num_threads(before)
    assert sorted(i for i, _, _ in seen) == list(range(7))
    assert {n for _, _, n in seen} == {1}
    threads = {t for _, t, _ in seen}
    assert 1 <= len(threads) <= pool
    assert threading.get_ident() in threads  # the first share runs on the caller's thread


def test_a_failing_part_raises_once_the_other_shares_are_done() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    done: list[int] = []

    def fail() -> None:
        raise ValueError("bad part")

    try:
        with pytest.raises(ValueError, match="bad part"):
            run_parts([lambda: done.append(0), fail, lambda: done.append(2), lambda: done.append(3)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    # the caller's share (parts 0 and 2) ran whole; the worker's stopped at its failing part
    assert sorted(done) == [0, 2]


def test_one_torch_thread_restores_the_pool_and_can_be_off() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        with one_torch_thread(enabled=False):
            assert torch.get_num_threads() == 2
        with pytest.raises(KeyError), one_torch_thread():
            raise KeyError("x")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

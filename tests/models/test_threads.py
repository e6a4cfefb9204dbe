"""models.threads: small torch work beside the engine, on one torch thread a part."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from models.threads import one_torch_thread, run_parts


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_parts_run_once_each_side_by_side_on_one_torch_thread(pool: int) -> None:
    """7 parts with torch's pool at ``pool`` threads: exactly ``pool`` shares run at once (the
    first part of each waits for the others at a barrier; no more are ever active together),
    each on its own thread, the first on the caller's, every part once with torch on one
    thread, part i in share i % pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(pool)
    seen: dict[int, tuple[int, int]] = {}
    lock = threading.Lock()
    together = threading.Barrier(pool, timeout=10)
    active, most = 0, 0

    def part(i: int) -> None:
        nonlocal active, most
        with lock:
            seen[i] = (threading.get_ident(), torch.get_num_threads())
            active += 1
            most = max(most, active)
        if i < pool:  # the first part of each share: all of them running at once
            together.wait()
        time.sleep(0.01)  # long enough to overlap whatever else runs then
        with lock:
            active -= 1

    try:
        run_parts([lambda i=i: part(i) for i in range(7)])
        assert torch.get_num_threads() == pool  # the caller's pool size is back
    finally:
        torch.set_num_threads(before)
    assert sorted(seen) == list(range(7))
    assert {n for _, n in seen.values()} == {1}
    assert most == pool
    assert len({t for t, _ in seen.values()}) == pool
    assert seen[0][0] == threading.get_ident()  # the first share runs on the caller's thread
    assert all(seen[i][0] == seen[i % pool][0] for i in range(7))


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

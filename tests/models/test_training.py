"""The shared training loop (models/training.py): schedule, budget, checkpoint and resume."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.training import Cosine, Every, Loop


def _run(path: Path, stop_at: int | None = None) -> tuple[torch.nn.Module, Loop]:
    """A linear model fitted for 8 steps on batches from a seeded generator kept in the
    checkpoint; ``stop_at``: the run dies right after the checkpoint of that step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    loop = Loop(model, opt, Cosine(0.1, warmup=2, floor=0.05), steps=8, checkpoint=path,
                save_every=Every(steps=1), state=lambda: {"gen": gen.get_state()}, log_every=None)
    if (ck := loop.resume()) is not None:
        gen.set_state(ck["gen"])

    def loss() -> torch.Tensor:
        x = torch.randn(16, 4, generator=gen)
        return (model(x) - x.sum(1, keepdim=True)).pow(2).mean()

    def die() -> None:
        if loop.step == stop_at:
            loop.save()
            raise KeyboardInterrupt

    loop.run(loss, [(Every(steps=1), die)])
    return model, loop


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole, loop = _run(tmp_path / "a.pt")
    assert loop.step == 8 and torch.load(tmp_path / "a.pt", weights_only=False)["step"] == 8
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b.pt", stop_at=3)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["step"] == 3
    resumed, loop = _run(tmp_path / "b.pt")
    assert loop.step == 8
    torch.testing.assert_close(resumed.state_dict(), whole.state_dict(), rtol=0, atol=0)


def test_schedule_warms_up_decays_and_keeps_its_floor() -> None:
    s = Cosine(1.0, warmup=4, floor=0.1)
    assert s(0, 0.0) == pytest.approx(0.25) and s(3, 0.0) == pytest.approx(1.0)
    assert s(10, 0.5) == pytest.approx(0.5) and s(10, 1.0) == pytest.approx(0.1)
    assert Cosine(1.0, rest=0.05)(10, 1.0) == pytest.approx(0.05)


def test_budget_of_steps_stops_there_and_zero_steps_runs_none(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    loop = Loop(model, opt, Cosine(0.1), steps=0, log_every=None)
    loop.run(lambda: calls.append(1) or model(torch.ones(1, 2)).sum())
    assert loop.step == 0 and calls == []
    loop = Loop(model, opt, Cosine(0.1), steps=3, log_every=None)
    loop.run(lambda: model(torch.ones(1, 2)).sum())
    assert loop.step == 3 and loop.progress() == 1.0

"""stream.session: the one place that picks model, temporal mode and the smoothing's device."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import IdentityEngine

from stream.errors import UserError
from stream.options import DenoiseOptions, RunOptions
from stream.session import default_model, make_processor, plan, smoothing_device


class DeviceEngine(IdentityEngine):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device


def test_smoothing_runs_where_the_engine_runs(monkeypatch):
    """--device cpu keeps the smoothing on the CPU even where CUDA is available (it once
    moved to CUDA whenever torch saw a GPU)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    light = DenoiseOptions(model="fast", temporal="light", device="cpu")
    stage = make_processor(light, DeviceEngine("cpu")).temporal_factory()
    assert stage.device == "cpu"
    assert smoothing_device(DeviceEngine("cuda:1")) == "cuda:1"
    assert smoothing_device(IdentityEngine()) == "cpu"  # an engine that names no device
    assert make_processor(dataclasses.replace(light, temporal="off"),
                          DeviceEngine("cpu")).temporal_factory is None


def test_plan_decides_model_and_smoothing_once(monkeypatch):
    import models

    asked = DenoiseOptions(device="cpu")
    planned = plan(asked)
    assert asked.model is None and asked.temporal == "auto"  # frozen: the asked stay as asked
    assert planned.model == default_model("cpu") == "fast"
    real = models.load_metadata
    monkeypatch.setattr(models, "load_metadata", lambda name: {"status": "trained",
                        "temporal_auto": "light"} if name == "base-temporal" else real(name))
    assert plan(DenoiseOptions(model="base")) == DenoiseOptions(model="base-temporal",
                                                               temporal="light")
    assert plan(DenoiseOptions(model="base", temporal="off")).model == "base"
    with pytest.raises(UserError, match="^--temporal: expected one of off, auto, light, strong, "
                                        "got 'sideways'$"):
        plan(DenoiseOptions(temporal="sideways"))


def test_options_are_frozen():
    run = RunOptions(input="in.mp4", outputs=("out.mp4",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.denoise.model = "base"  # type: ignore[misc]


class Closing:
    live = False

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("stuck", [False, True])
@pytest.mark.parametrize("live", [False, True])
def test_a_stuck_reader_keeps_its_source_on_both_paths(stuck, live):
    """Session.run, which the file and the live path share, closes the engine always and the
    source only when its reader thread has stopped: closing a source under a reader stuck in
    a blocking read (stdin, a stalled network) could crash the decoder."""
    from stream.live import LiveControls
    from stream.pipeline import PipelineResult
    from stream.session import Session

    source, engine = Closing(), Closing()
    controls = LiveControls() if live else None
    session = Session(RunOptions(input="x"), DenoiseOptions(model="fast", temporal="off"),
                      source, [], engine, processor=lambda frame: frame, controls=controls)

    def runner(pipeline):
        pipeline.reader_stuck = stuck
        return PipelineResult()

    session.run(runner=runner)
    assert engine.closed == 1 and source.closed == (0 if stuck else 1)
    assert controls is None or controls.stop.is_set()

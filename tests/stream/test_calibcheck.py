"""A calibration's held-out check (``stream.calibcheck``): which samples are held out, the
score through the product's processing, and a tune that does not help left unused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stream_helpers import quick_calibration
from test_calibrate_cli import noisy_frames, write

from models import create_model
from stream import calibcheck
from stream.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return quick_calibration(tmp_path, monkeypatch)


class Worse(torch.nn.Module):
    """``fast`` with its output lifted by 8 levels: a tune gone wrong."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.net(*args) + 8 / 255


def test_every_fourth_sample_from_the_third_is_held_out() -> None:
    assert calibcheck.split([0, 1]) == ([0, 1], [])  # too few to hold any out
    assert calibcheck.split([0, 1, 2]) == ([0, 1], [2])
    tune, held = calibcheck.split(list(range(13)))
    assert held == [2, 6, 10] and tune == [0, 1, 3, 4, 5, 7, 8, 9, 11, 12]


def test_the_check_scores_each_net_through_the_processor() -> None:
    from models.calibrate_tune import Prepared

    clean, frames = noisy_frames(2)
    ref = torch.from_numpy(clean).permute(2, 0, 1).float().div(255)
    items = [Prepared(torch.from_numpy(f).permute(2, 0, 1).float().div(255), ref, 0.0,
                      torch.zeros(1, *clean.shape[:2]), None) for f in frames]
    base = create_model("fast")
    scores = calibcheck.check("fast", {"base": base, "worse": Worse(base)}, items)
    noisy = np.mean([10 * np.log10(255 ** 2 / np.mean((f.astype(float) - clean) ** 2)) for f in frames])
    assert scores["check_samples"] == 2
    assert scores["check_base"] > noisy + 1  # denoised, as the product does
    assert scores["check_worse"] < scores["check_base"] - 0.5  # 8 levels off everywhere
    assert calibcheck.check("fast", {"base": base}, []) == {}


def test_a_tune_that_does_not_help_on_held_out_pairs_is_not_used(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import models.calibrate_tune as tune

    folder = tmp_path / "pairs"
    folder.mkdir()
    clean, frames = noisy_frames(4, seed=3)
    for i in range(4):
        write(folder / f"CamA_x_scene{i}_{i}_real.png", frames[i])
        write(folder / f"CamA_x_scene{i}_{i}_mean.png", clean)
    monkeypatch.setattr(tune, "finetune", lambda base, items, *a, **k: (
        Worse(base), {"steps": 3, "minutes": 0.0, "loss": 0.0, "items": len(items)}))
    assert main(["calibrate", "--pairs", str(folder), "--name", "w", "--steps", "3"]) == 0
    assert "the profile keeps the original weights" in caplog.text
    prof = json.loads((cache / "w" / "profile.json").read_text())
    assert prof["noise_map"] == "estimate" and prof["gains"]["tuned_kept"] == 0.0
    assert prof["gains"]["check_samples"] == 1
    assert prof["gains"]["check_tuned"] < prof["gains"]["check_base"]
    from safetensors.torch import load_file

    saved = load_file(str(cache / "w" / "weights.safetensors"))
    original = create_model("fast").state_dict()
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[k], original[k]) for k in saved)
    capsys.readouterr()
    assert main(["profiles"]) == 0
    assert "(original weights kept)" in capsys.readouterr().out

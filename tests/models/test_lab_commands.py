"""The lab commands of ``python -m models`` run end to end on tiny data, in seconds.

``train`` (and its resume), ``eval``, ``list``, ``explain`` and ``noise-fit`` each get a folder
made here from the two bundled test photos, so none of them needs ../shared.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models import get_spec, load_metadata, model_names
from models.__main__ import main as models_main
from models.data import read_rgb
from models.metrics import psnr

PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data").glob("*_crop.png"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A ../shared/data look-alike: bsds500/{train,val}/*.jpg and the two split lists."""
    root = tmp_path / "data"
    ids = []
    for sub in ("train", "val"):
        (root / "bsds500" / sub).mkdir(parents=True)
        for i, p in enumerate(PHOTOS):
            img = cv2.imread(str(p))
            name = f"{sub}{i}"
            cv2.imwrite(str(root / "bsds500" / sub / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 98])
            ids.append((sub, name))
    (root / "splits").mkdir()
    (root / "splits" / "cbsd432.txt").write_text("\n".join(n for s, n in ids if s == "train") + "\n")
    (root / "splits" / "cbsd68.txt").write_text("\n".join(n for s, n in ids if s == "val") + "\n")
    return root


def test_train_writes_weights_with_metadata_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--model", "fast", "--device", "cpu", "--threads", "1", "--batch", "2", "--patch", "32",
            "--data", str(data_dir), "--out", str(out), "--val-every", "1000", "--ckpt-every", "2"]
    assert models_main([*args, "--steps", "3"]) == 0
    from safetensors import safe_open

    with safe_open(str(out / "fast.safetensors"), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["steps"] == "3" and meta["model"] == "fast" and meta["device"] == "cpu"
    assert meta["command"].startswith("python -m models train --model fast")
    assert "sha256[:16]" in meta["data"] and json.loads(meta["noise"])["isp"] > 0
    assert keys == set(get_spec("fast").build().state_dict())
    first = torch.load(out / "checkpoint.pt", weights_only=False)
    assert first["step"] == 3
    # the same command with more steps continues from the checkpoint, not from scratch
    assert models_main([*args, "--steps", "5"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 5
    with safe_open(str(out / "fast.safetensors"), "pt") as f:
        assert f.metadata()["steps"] == "5"


def test_train_estimator_writes_weights_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    from models.estimate_net import NoiseLevelNet

    out = tmp_path / "est"
    args = ["train-estimator", "--data", str(data_dir), "--out", str(out), "--batch", "2", "--threads", "1"]
    assert models_main([*args, "--steps", "2"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2
    assert models_main([*args, "--steps", "3"]) == 0  # continues from the checkpoint
    with safe_open(str(out / "estimator.safetensors"), "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    assert meta["steps"] == "3" and meta["model"] == "estimator"
    assert meta["command"].startswith("python -m models train-estimator --data")
    assert keys == set(NoiseLevelNet().state_dict())

def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for p in PHOTOS:
        cv2.imwrite(str(folder / p.name), cv2.imread(str(p)))
    return folder


def test_eval_on_a_folder_reports_the_gain_of_the_shipped_model(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path)
    report = tmp_path / "eval.json"
    assert models_main(["eval", "--model", "fast", "--images", str(folder), "--sigma", "25",
                        "--baselines", "none", "--json", str(report)]) == 0
    res = json.loads(report.read_text())
    assert res["n_images"] == 2
    assert res["engines"] == {"fast": "torch-cpu"}  # through the product's engine (engines.open_engine)
    assert torch.is_grad_enabled()  # an in-process run leaves the caller's autograd as it was
    noisy = res["synthetic"]["25"]["noisy (unclipped)"]["psnr"]
    fast = res["synthetic"]["25"]["fast"]["psnr"]
    assert 20.0 < noisy < 21.5  # sigma 25 white noise: 20.2 dB, a little more where 0..255 clips it
    assert fast > noisy + 6.0


def test_eval_camera_noise_scores_each_reading_and_the_true_level(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path)
    report = tmp_path / "eval.json"
    assert models_main(["eval", "--model", "fast", "--images", str(folder), "--sigma", "",
                        "--camera-noise", "5e-3,2e-2", "--baselines", "nlm", "--json", str(report)]) == 0
    cam = json.loads(report.read_text())["camera"]
    assert cam["n"] == 2 and cam["shot"] == [5e-3, 2e-2]
    assert 10.0 < cam["levels"]["true"] < 45.0  # heavy phone-like noise: std 15 to 40 levels
    noisy = cam["noisy"]["psnr"]
    assert 16.0 < noisy < 26.0
    own = next(k for k in cam if k.startswith("fast (auto: "))
    assert cam[own]["psnr"] > noisy + 2.0 and cam["fast (told the true std)"]["psnr"] > noisy + 2.0
    assert any(k.startswith("OpenCV NLM (best h ") for k in cam)


def test_eval_pairs_with_scaled_noise_scores_the_heavier_pairs(tmp_path: Path) -> None:
    """``--pairs`` with ``--noise-scale 3``: the same two pairs (the bundled photos with camera-
    like grain of 4 levels) come back noisier by about 20 log10(3) dB, the fixed-level grid and
    NLM's h scaled with the noise, and the model still gains (``nano`` +0.85 dB at its own
    reading since the 4 x 4 split joined the blend, +1.35 before: this grain, blurred over a
    pixel, reads coarse and its split level about twice its std; +3.56 with the split off)."""
    rng = np.random.default_rng(5)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for i, photo in enumerate(PHOTOS):
        clean = read_rgb(photo)
        grain = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (0, 0), 1.0)
        noisy = np.clip(np.round(clean + grain * (4 / grain.std())), 0, 255).astype(np.uint8)
        cv2.imwrite(str(pairs / f"cam_{i}_1_real.png"), noisy[..., ::-1])
        cv2.imwrite(str(pairs / f"cam_{i}_1_mean.png"), clean[..., ::-1])
    res = {}
    for k in ("1", "3"):
        report = tmp_path / f"x{k}.json"
        assert models_main(["eval", "--model", "nano", "--sigma", "", "--pairs", str(pairs), "--noise-scale", k,
                            "--data", str(tmp_path / "no-data"),  # --pairs alone needs no CBSD68
                            "--baselines", "nlm", "--json", str(report)]) == 0
        res[k] = json.loads(report.read_text())["pairs"]
    assert res["1"]["noise_scale"] == 1.0 and res["3"]["noise_scale"] == 3.0 and res["3"]["n"] == 2
    drop = res["1"]["noisy"]["psnr"] - res["3"]["noisy"]["psnr"]
    assert 8.5 < drop < 10.0, drop  # 20 log10(3) = 9.54 dB, a little less where 0..255 clips
    best_h = [float(k.split("best h ")[1].rstrip(")")) for k in res["3"] if k.startswith("OpenCV NLM (best h")]
    assert best_h and best_h[0] % 3 == 0  # a point of the grid scaled 3 times
    assert res["3"]["nano (auto sigma: net)"]["psnr"] > res["3"]["noisy"]["psnr"] + 0.6


def test_list_json_matches_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert models_main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == model_names()
    fast = next(r for r in rows if r["name"] == "fast")
    assert fast["params"] == sum(t.numel() for t in get_spec("fast").build().parameters())
    assert 3.0 < fast["gmac_per_mp"] < 4.5  # the budget test_cost_budget_per_megapixel holds it to
    assert fast["trained"] is True and load_metadata("fast")["status"] == "trained"


def test_explain_writes_the_panels(tmp_path: Path) -> None:
    out = tmp_path / "explain.png"
    assert models_main(["explain", str(PHOTOS[0]), str(out), "--model", "fast", "--clean", "--sigma", "25"]) == 0
    panel = read_rgb(out)
    h, w = read_rgb(PHOTOS[0]).shape[:2]
    assert panel.shape[0] >= h and panel.shape[1] >= 2 * w  # several panels of the input's size
    assert panel.std() > 10  # pictures, not a blank canvas


def test_noise_fit_recovers_a_known_camera(data_dir: Path, tmp_path: Path) -> None:
    from models.noise import camera

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    shot, read = 3e-3, 1e-3
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        # smooth ramps (no detail for demosaicking to get wrong) over every brightness, 8-bit
        ramp = torch.linspace(0.02, 0.98, 256).view(1, 1, 1, -1).expand(1, 3, 192, 256).contiguous()
        clean = (ramp * (1.0 - 0.1 * i) * 255).round() / 255
        noisy, _ = camera(clean, torch.tensor([shot]), torch.tensor([read]), generator=gen)
        for kind, img in (("real", noisy), ("mean", clean)):
            arr = (img[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            cv2.imwrite(str(pairs / f"cam_{i}_{kind}.png"), arr[..., ::-1])
    report = tmp_path / "fit.json"
    assert models_main(["noise-fit", "--pairs", str(pairs), "--data", str(data_dir), "--json", str(report)]) == 0
    res = json.loads(report.read_text())
    assert len(res["pairs"]) == 2
    for row in res["pairs"]:
        assert row["rms"] < 0.5  # the fitted curve is within half a level of the measured one
        assert shot / 1.5 <= row["shot"] <= shot * 1.5 and read / 2 <= row["read"] <= read * 2
        assert row["in_training_range"]
    assert res["correlations"]["real pairs (2)"]["lag1"] > 0.2  # demosaicked: neighbours correlate


def test_bad_pairs_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert models_main(["noise-fit", "--pairs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_noisy_psnr_helper_agrees_with_numpy() -> None:
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 10.0)
    assert psnr(a, b, 255.0) == pytest.approx(20 * np.log10(255 / 10))


@pytest.mark.parametrize("argv", [
    ["train", "--model", "nope", "--device", "cpu"],  # an unknown model
    ["train", "--model", "fast", "--device", "cpu", "--data", "/nonexistent", "--steps", "1"],  # no data
    ["train-estimator", "--data", "/nonexistent", "--steps", "1"],
    ["eval", "--model", "fast", "--backend", "tensorrt", "--device", "cpu"],  # a backend not for that device
])
def test_user_errors_are_one_line_and_exit_2(argv: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert models_main([*argv, "--out", str(tmp_path / "o")] if argv[0].startswith("train") else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


@pytest.mark.parametrize("value", ["abc", "5e-3", "2e-2,5e-3"])
def test_a_bad_camera_noise_range_is_refused_without_a_traceback(value: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and one error line
        models_main(["eval", "--model", "fast", "--sigma", "", "--camera-noise", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m models eval: error: argument --camera-noise: expected ")
    assert not any("Traceback" in line for line in err)


def test_eval_scales_a_pairs_noise_and_refuses_a_bad_factor(capsys: pytest.CaptureFixture[str]) -> None:
    from models.lab.evaluate import scale_noise

    clean = np.array([[[10, 100, 250]]], np.uint8)
    noisy = np.array([[[13, 98, 252]]], np.uint8)
    assert scale_noise(noisy, clean, 1.0) is noisy
    assert scale_noise(noisy, clean, 2.0).tolist() == [[[16, 96, 254]]]
    assert scale_noise(noisy, clean, 4.0).tolist() == [[[22, 92, 255]]]  # clipped to 8 bits
    with pytest.raises(SystemExit) as exit_:  # argparse: the usage line, then the error
        models_main(["eval", "--pairs", "nowhere", "--noise-scale", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--noise-scale" in err[-1] and "0 < K <= 20" in err[-1]
    assert models_main(["eval", "--pairs", "nowhere", "--noise-scale", "2", "--record"]) == 2  # before any work
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --record keeps the pairs' scores as measured (no --noise-scale)"]

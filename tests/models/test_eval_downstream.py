"""``python -m models eval-downstream`` on a tiny set: detections on clean copies are their own
reference, heavy noise costs QR decodes, denoising wins some back, bad input is one line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.lab.eval_downstream import Detectors, iou, main, matches

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("photos")
    for p in DATA.glob("*.png"):  # astronaut (a face) and coffee
        shutil.copy(p, folder / p.name)
    out = folder.parent / "report.json"
    rc = main(["--images", str(folder), "--sigma", "5,60", "--models", "fast", "--strength", "0.5,1",
               "--qr", "6", "--aruco", "1", "--json", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


def test_clean_is_its_own_reference(report: dict) -> None:
    for rows in report["sigma"].values():
        clean = rows["clean"]
        assert clean["aruco_decode"] == 1.0  # every rendered marker reads back when clean
        assert clean["qr_decode"] >= 0.6
        if "face" not in report["not_measured"]:  # OpenCV 4.x: the Haar cascade is there
            assert report["people_ids"] == ["astronaut_crop"]
            assert clean["face"]["recall"] == 1.0 and clean["face"]["precision"] == 1.0
        else:
            assert report["people_ids"] == [] and clean["face"]["recall"] is None


def test_heavy_noise_costs_qr_decodes_and_denoising_wins_some_back(report: dict) -> None:
    light, heavy = report["sigma"]["5"], report["sigma"]["60"]
    clean = heavy["clean"]["qr_decode"]
    assert light["noisy"]["qr_decode"] >= clean - 0.17  # sigma 5: at most one code lost
    assert heavy["noisy"]["qr_decode"] < clean
    best = max(heavy[m]["qr_decode"] for m in report["methods"] if m.startswith(("fast", "nlm")))
    assert best > heavy["noisy"]["qr_decode"]
    assert heavy["fast told x1"]["psnr"] > heavy["noisy"]["psnr"] + 5
    assert set(heavy) == set(report["methods"]) == {
        "clean", "noisy", "nlm", "fast told x0.5", "fast told x1", "fast auto x0.5", "fast auto x1"}


def test_matching_is_one_to_one_at_iou_half() -> None:
    ref = np.float32([[0, 0, 10, 10], [20, 20, 10, 10]])
    det = np.float32([[1, 1, 10, 10], [0, 0, 10, 10], [40, 40, 5, 5]])
    assert iou(ref, det).shape == (2, 3)
    assert matches(ref, det) == 1  # two detections on the first box count once
    assert matches(ref, ref) == 2
    assert matches(ref, np.float32([[5, 5, 10, 10]])) == 0  # IoU 25/175


def test_qr_detector_reads_a_rendered_code() -> None:
    code = cv2.QRCodeEncoder.create().encode("hello")
    img = cv2.cvtColor(cv2.resize(code, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    assert Detectors().qr_text(img) == "hello"


@pytest.mark.parametrize(("args", "message"), [
    (["--images", "/nonexistent"], "expected a folder of images"),
    (["--images", "EMPTY"], "no images"),
    (["--images", "DATA", "--sigma", "ten"], "--sigma: expected comma-separated numbers"),
    (["--images", "DATA", "--sigma", "300"], "--sigma: expected numbers in 0..255"),
    (["--images", "DATA", "--strength", "-1"], "--strength: expected numbers in 0..10"),
    (["--images", "DATA", "--models", "nope"], "unknown model 'nope'"),
    (["--images", "DATA", "--models", "base-temporal"], "video (temporal) model"),
    (["--images", "DATA", "--qr", "-1"], "--qr: expected a whole number"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    args = [{"EMPTY": str(tmp_path / "empty"), "DATA": str(DATA)}.get(a, a) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err

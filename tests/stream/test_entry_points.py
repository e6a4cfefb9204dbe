"""How the command lines are reached: ``python -m stream``, the ``denoise-stream`` console
script (the same ``main``) and ``python -m stream.bench`` (its own module, not a word that
``python -m stream`` interprets)."""
from __future__ import annotations

import pytest
from conftest import ROOT

import stream.__main__
import stream.cli
from stream.bench import main as bench_main
from stream.cli import main


def test_console_script_is_python_m_stream():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["denoise-stream"] == "stream.cli:main"
    assert stream.__main__.main is stream.cli.main


def test_bench_is_not_a_word_of_python_m_stream(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no file named bench here
    assert main(["bench", "--sizes", "480p"]) == 2
    assert capsys.readouterr().err == "error: unrecognized arguments: --sizes 480p (see --help)\n"
    assert main(["bench", "out.mp4"]) == 2
    assert capsys.readouterr().err == "error: input not found: bench\n"


def test_bench_user_errors_are_one_line(capsys):
    assert bench_main(["--sizes", "480p,huge"]) == 2
    assert capsys.readouterr().err == ("error: unknown size 'huge'; expected 360p, 480p, 720p, "
                                       "1080p or WxH\n")
    assert bench_main(["--sizes", "64x48", "--temporal", "sideways"]) == 2
    assert capsys.readouterr().err.startswith("error: --temporal: expected one of off, auto")

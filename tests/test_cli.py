"""The `derain` command line: info, derain, score, and its one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage
import torch

from derain_lib import info
from derain_lib.cli import build_parser, main
from derain_lib.commands import COMMANDS
from derain_lib.data.catalog import DATASETS
from derain_lib.data.io import read_image_uint8, write_png
from derain_lib.fsutil import data_root
from derain_lib.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_is_installed_and_info_lists_models_and_weights(shared):
    exe = Path(sys.executable).parent / "derain"
    r = subprocess.run(
        [str(exe), "info", "--weights-dir", str(shared / "weights")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "torch 2.14.1" in r.stdout
    for name in MODELS:
        assert name in r.stdout
    for w in (
        "sian-rain100l",
        "sian-rain100h",
        "sian-rain1400",
        "prenet-rain100l",
        "prenet-rain100h",
    ):
        assert w in r.stdout
    assert "local: " in r.stdout


def test_fetch_offers_what_can_be_fetched() -> None:
    """The torch-free choices of ``derain fetch`` are the weights and data.catalog.DATASETS."""
    assert {*info.FETCH_TARGETS, *info.FETCH_EXTRA} == {"weights", *DATASETS}
    assert set(info.FETCHED_SETS.values()) <= set(DATASETS)


def test_data_root_is_derain_data_else_the_user_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "c"))
    assert data_root() == tmp_path / "d"
    monkeypatch.delenv("DERAIN_DATA")
    assert data_root() == tmp_path / "c/data"


def test_every_command_of_the_parser_runs_something() -> None:
    def commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {prefix.strip()}
        return set().union(
            *(commands(p, f"{prefix} {name}") for name, p in subs[0].choices.items())
        )

    assert commands(build_parser()) == {*COMMANDS, "info"}  # cli.main answers info
    args = build_parser().parse_args(["data", "scan", "x"])
    assert args.command == "data scan"


def test_info_imports_no_torch_and_shows_the_versions_torch_reports(shared) -> None:
    code = (
        "import sys; from derain_lib.cli import main; "
        f"rc = main(['info', '--weights-dir', {str(shared / 'weights')!r}]); "
        "heavy = [m for m in ('torch', 'numpy', 'derain_lib.commands') if m in sys.modules]; "
        "assert rc == 0 and not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[1]
    assert f"  torch {torch.__version__}  numpy {np.__version__}  " in line
    assert f"  scikit-image {skimage.__version__}  threads " in line
    assert "local: " in r.stdout and "sian-rain100l" in r.stdout


def test_score_prints_rows_and_mean_and_json(shared, capsys):
    d = shared / "data/rain100l_sample"
    assert main(["score", str(d / "rainy"), str(d / "norain")]) == 0
    out = capsys.readouterr().out
    assert "rain-050.png" in out and "norain-050.png" in out and "26.5538" in out
    assert main(["score", str(d / "rainy"), str(d / "norain"), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["n"] == 4 and round(js["psnr"], 4) == 26.5538 and round(js["ssim"], 5) == 0.82652
    assert len(js["per_image"]) == 4 and {"name", "psnr", "ssim"} <= set(js["per_image"][0])


def test_score_lists_unpaired_files(shared, tmp_path, capsys):
    d = shared / "data/rain100l_sample"
    shutil.copytree(d / "rainy", tmp_path / "pred")
    shutil.copy(d / "rainy/rain-001.png", tmp_path / "pred/rain-007.png")
    assert main(["score", str(tmp_path / "pred"), str(d / "norain"), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["n"] == 4 and js["unpaired_pred"] == [str(tmp_path / "pred/rain-007.png")]


def test_derain_writes_pngs_of_the_input_size(shared, tmp_path, capsys):
    src = read_image_uint8(shared / "data/rain100l_sample/rainy/rain-025.png")
    write_png(tmp_path / "in/a.png", src[:37, :53])
    write_png(tmp_path / "in/b.png", src[40:64, 100:140])
    args = [
        "derain",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        "sian-rain100l",
        "--weights-dir",
        str(shared / "weights"),
    ]
    assert main(args) == 0
    assert read_image_uint8(tmp_path / "out/a.png").shape == (37, 53, 3)
    assert read_image_uint8(tmp_path / "out/b.png").shape == (24, 40, 3)
    out, err = capsys.readouterr()
    assert "ignored 4 unused tensors" in err
    # each output named on stdout as it is written; a bar over the files on stderr
    assert out.splitlines() == [str(tmp_path / "out/a.png"), str(tmp_path / "out/b.png")]
    assert "derain: 100%" in err and "2/2" in err
    assert main([*args, "--overwrite", "--no-progress"]) == 0
    assert "100%" not in capsys.readouterr().err
    # a single input may name a .png file
    one = [
        "derain",
        str(tmp_path / "in/b.png"),
        "-o",
        str(tmp_path / "one.png"),
        "--weights",
        str(shared / "weights/prenet_rain100l.pth"),
        "--model",
        "prenet",
    ]
    assert main(one) == 0 and (tmp_path / "one.png").is_file()


@pytest.mark.parametrize(
    "case,message",
    [
        ("corrupt", "corrupt or truncated image"),
        ("missing", "no such file or folder"),
        ("wrong-model", "holds sian weights, but --model prenet"),
        ("tiny", "image is 32x5; SIAN needs at least 8x8 pixels"),
    ],
)
def test_derain_errors_are_one_line(shared, tmp_path, capsys, case, message):
    img = tmp_path / "x.png"
    write_png(img, np.zeros((32, 32, 3), np.uint8))
    weights, model = str(shared / "weights/sian_rain100l.pth"), []
    if case == "corrupt":
        img.write_bytes(img.read_bytes()[:60])
    elif case == "missing":
        img = tmp_path / "nope.png"
    elif case == "wrong-model":
        model = ["--model", "prenet"]
    elif case == "tiny":
        write_png(img, np.zeros((5, 32, 3), np.uint8))
    code = main(["derain", str(img), "-o", str(tmp_path / "o"), "--weights", weights, *model])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("derain: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)

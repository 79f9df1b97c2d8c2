"""Two CPU processes (torchrun, gloo) train like one process with the same global batch."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from derain_lib.config import load_config
from derain_lib.runs import get_or_run
from derain_lib.weights import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SETS = [
    "model.name=sian-baseline",
    "model.kwargs.channels=8",
    "train.max_steps=4",
    "train.val_images=0",
    "eval.max_images=1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(results: Path) -> list[float]:
    (run,) = (results / "runs").iterdir()
    with open(run / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def _state(results: Path) -> dict:
    (run,) = (results / "runs").iterdir()
    return read_checkpoint(run / "model.pt")["state_dict"]


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    two, one = tmp_path / "two", tmp_path / "one"
    sets = [a for s in SETS for a in ("--set", s)]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "derain_lib.cli", "train", "--config", "smoke", *sets,
        "--results", str(two), "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    get_or_run(load_config("smoke", SETS), one, progress=False)
    a, b = _losses(two), _losses(one)
    assert len(a) == len(b) == 4
    assert a == pytest.approx(b, abs=1e-5)
    sa, sb = _state(two), _state(one)
    dw = max(float((sa[k] - sb[k]).abs().max()) for k in sa)
    print(f"max |loss diff| {max(abs(x - y) for x, y in zip(a, b, strict=True)):.2e}, "
          f"max |weight diff| {dw:.2e}")  # fmt: skip
    assert dw < 1e-5
    (run,) = (two / "runs").iterdir()
    assert json.loads((run / "provenance.json").read_text())["world_size"] == 2

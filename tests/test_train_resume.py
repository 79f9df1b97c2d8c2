"""kill -9 in the middle of training, resume: the final weights equal an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Tiny

from derain_lib.config import load_config
from derain_lib.runs import get_or_run
from derain_lib.weights import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
#: The smoke profile (embedded smoke data, patch 32, batch 4, 8 steps over two epochs)
#: with the shared tiny SIAN (tests/conftest.py) so that the three launches fit in a minute.
SETS = Tiny()("data.patch=32", "train.max_steps=8", "eval.max_images=1")


def _cmd(results: Path) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return [sys.executable, "-m", "derain_lib.cli", "train", "--config", "smoke", *sets,
            "--results", str(results), "--no-progress"]  # fmt: skip


def _weights(results: Path) -> bytes:
    (run,) = (results / "runs").iterdir()
    sd = read_checkpoint(run / "model.pt")["state_dict"]
    return b"".join(k.encode() + sd[k].numpy().tobytes() for k in sorted(sd))


def _kill_after(results: Path, step: int, delay: float) -> None:
    """Start a run, SIGKILL it ``delay`` s after checkpoint ``step`` appears."""
    p = subprocess.Popen(_cmd(results), cwd=ROOT, stderr=subprocess.DEVNULL)
    want = f"step-{step:08d}.pt"
    deadline = time.monotonic() + 120
    while not list(results.glob(f"runs/*/checkpoints/{want}")):
        assert p.poll() is None, f"run ended (exit {p.returncode}) before checkpoint {step}"
        assert time.monotonic() < deadline, f"no checkpoint {step} after 120 s"
        time.sleep(0.02)
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert not list(results.glob("runs/*/model.pt")), "the run finished before the kill"


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    get_or_run(load_config("smoke", SETS), whole, progress=False)  # in this process
    _kill_after(killed, 2, 0.1)  # mid-epoch 1, most likely inside step 3
    _kill_after(killed, 4, 0.0)  # right after the epoch-1 checkpoint (validated, step 5 next)
    done = subprocess.run(_cmd(killed), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _weights(killed) == _weights(whole)
    (run,) = (killed / "runs").iterdir()
    steps = [ln.split(",")[1] for ln in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4", "4", "5", "6", "7", "8", "8"]  # no repeats

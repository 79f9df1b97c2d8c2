"""The paper profile spread over processes: two gloo CPU processes under torchrun share the
training runs of a (tiny) smoke plan, each run trained once, results equal to one process."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from derain_lib.study.plan import Params
from derain_lib.study.training import planned_runs, share_training
from derain_lib.weights import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
#: The smoke plan with tiny models: one optimiser step per run, one test image.
TINY = (
    "model.kwargs.channels=4",
    "model.kwargs.stages=2",
    "train.max_steps=1",
    "train.val_images=0",
    "eval.max_images=1",
)
SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
from derain_lib.study.plan import Params
from derain_lib.study.training import share_training
rows = share_training(Params("smoke", overrides={tiny!r}))
out = os.path.join(sys.argv[1], "rank%s.json" % os.environ["RANK"])
json.dump(rows, open(out, "w"))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(root: Path, key: str) -> tuple[dict, bytes, int]:
    run = root / "runs" / key
    sd = read_checkpoint(run / "model.pt")["state_dict"]
    weights = b"".join(sd[k].numpy().tobytes() for k in sorted(sd))
    with open(run / "log.csv") as f:
        steps = sum(1 for r in csv.DictReader(f) if r["loss"])
    return json.loads((run / "metrics.json").read_text()), weights, steps


@pytest.mark.slow
def test_two_gloo_processes_share_the_runs_of_a_smoke_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = planned_runs(Params("smoke", overrides=TINY))
    assert len(plan) >= 4
    script = tmp_path / "share.py"
    script.write_text(SCRIPT.format(tiny=TINY))
    env = {**os.environ, "DERAIN_RESULTS": str(tmp_path / "two"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script),
        str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shares = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    taken = [row["index"] for rows in shares for row in rows]
    assert sorted(taken) == list(range(len(plan)))  # every run taken, none by both
    assert all(shares) and {r["rank"] for r in shares[1]} == {1}
    rows = [row for rows in shares for row in rows]
    assert all(r["status"] == "ok" and r["trained"] for r in rows)
    keys = {r["run"] for r in rows}
    assert len(keys) == len(plan)

    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "one"))
    torch.set_num_threads(1)
    alone = share_training(Params("smoke", overrides=TINY))
    assert {r["run"] for r in alone} == keys  # the same runs (same keys) ...
    for key in keys:  # ... with the same results, each trained once (one step)
        two, one = _result(tmp_path / "two", key), _result(tmp_path / "one", key)
        assert two == one and two[2] == 1


def test_runs_are_dealt_longest_first_to_the_least_loaded() -> None:
    from derain_lib.study.training import deal

    assert deal([5, 1, 1, 1, 1, 1], 2) == [0, 1, 1, 1, 1, 1]
    assert deal([1, 1, 1, 1], 2) == [0, 1, 0, 1]
    assert deal([3, 3, 2, 2, 2], 2) == [0, 1, 0, 1, 0]
    assert deal([0.0, 0.0], 3) == [0, 1]
    assert deal([], 4) == []

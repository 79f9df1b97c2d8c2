"""TensorBoard beside log.csv: training writes the loss (total and per stage), the learning
rate, validation PSNR/SSIM and patches/s when tensorboard is installed; ``runs list`` says
where; without tensorboard nothing changes."""

from __future__ import annotations

import csv
import os
import re
import sys
from pathlib import Path

import pytest

from derain_lib.cli import main
from derain_lib.runs import get_or_run
from derain_lib.train import TENSORBOARD_DIR

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_training_writes_tensorboard_scalars_beside_log_csv(tmp_path: Path, tiny, capsys) -> None:
    run = get_or_run(tiny.config(), tmp_path, progress=False)
    acc = event_accumulator.EventAccumulator(str(run.dir / TENSORBOARD_DIR))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    want = {"loss/total", "loss/stage_1", "loss/stage_2", "learning_rate", "val/psnr",
            "val/ssim", "patches_per_s"}  # fmt: skip
    assert want <= tags and "loss/stage_3" not in tags  # the tiny SIAN has 2 stages
    with open(run.dir / "log.csv") as f:
        losses = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["loss"]}
    logged = {e.step: e.value for e in acc.Scalars("loss/total")}
    assert logged.keys() == losses.keys()
    assert all(logged[s] == pytest.approx(losses[s], rel=1e-5) for s in losses)
    parts = {e.step: e.value for e in acc.Scalars("loss/stage_1")}
    second = {e.step: e.value for e in acc.Scalars("loss/stage_2")}
    assert all(parts[s] + second[s] == pytest.approx(logged[s], rel=1e-4) for s in losses)
    assert main(["runs", "list", "--results", str(tmp_path)]) == 0
    logdir = re.search(r"tensorboard --logdir (\S+)", capsys.readouterr().out)
    assert logdir, "runs list names no folder for tensorboard"
    assert (Path(os.path.expandvars(logdir[1])) / run.key / TENSORBOARD_DIR).is_dir()


def test_without_tensorboard_training_writes_no_folder(
    tmp_path: Path, tiny, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = get_or_run(tiny.config("train.seed=3"), tmp_path, progress=False)
    assert run.status == "finished" and not (run.dir / TENSORBOARD_DIR).exists()
    assert main(["runs", "list", "--results", str(tmp_path)]) == 0
    assert "--logdir" not in capsys.readouterr().out  # no curves to point at

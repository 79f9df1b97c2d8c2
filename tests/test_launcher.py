"""``derain reproduce --launcher local``: the tiny smoke plan's training runs go out as one
submitit job array (local processes), then the training notebook finds every run in the
run cache instead of training it."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from derain_lib.cli import main
from derain_lib.errors import DerainError
from derain_lib.runs import find_run
from derain_lib.study import pipeline
from derain_lib.study.pipeline import launch_training
from derain_lib.study.plan import Params
from derain_lib.study.training import planned_runs
from derain_lib.threads import usable_cpus

#: The smoke plan with tiny models: one optimiser step per run, one test image.
TINY = (
    "model.kwargs.channels=4",
    "model.kwargs.stages=2",
    "train.max_steps=1",
    "train.val_images=0",
    "eval.max_images=1",
)


@pytest.mark.slow
def test_reproduce_launcher_local_trains_each_run_as_a_job_then_runs_the_notebooks(
    hermetic, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    plan = planned_runs(Params("smoke", overrides=TINY))
    assert plan and all(find_run(cfg).status != "finished" for _, cfg in plan)
    lines: list[str] = []
    pipeline.run_pipeline(
        "smoke",
        overrides=list(TINY),
        notebooks=("01_train.ipynb",),
        launcher="local",
        log=lambda *a, **k: lines.append(" ".join(map(str, a))),
    )
    text = "\n".join(lines)
    tasks = min(len(plan), usable_cpus())
    assert f"launcher: {len(plan)} training runs submitted as {tasks} tasks of job array" in text
    assert text.count("launcher: job ") == tasks
    assert all(find_run(cfg).status == "finished" for _, cfg in plan)
    progress = capfd.readouterr().err.splitlines()  # the training notebook's progress
    assert any("from the run cache" in line for line in progress), progress
    trained = [line for line in progress if ": training, " in line]
    assert not trained, trained  # the notebook found every run in the cache
    logs = list((pipeline.results_dir("smoke") / ".submitit").glob("*_log.out"))
    assert len(logs) == tasks  # each task of the array logged beside the others


def test_launcher_options_and_a_missing_engine_are_one_line_errors(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    with pytest.raises(DerainError, match="expected KEY=VALUE"):
        launch_training(Params("smoke"), "slurm", Path("unused"), ["600"])
    seen: dict[str, object] = {}

    class Executor:  # submitit's, as far as the parameters reach it
        def __init__(self, folder: Path, cluster: str) -> None:
            pass

        def update_parameters(self, **kwargs: object) -> None:
            seen.update(kwargs)
            raise ValueError("unknown parameter")

    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))  # no run finished: every run to submit
    monkeypatch.setitem(sys.modules, "submitit", types.SimpleNamespace(AutoExecutor=Executor))
    with pytest.raises(DerainError, match="submission failed: unknown parameter"):
        launch_training(Params("smoke", overrides=TINY), "slurm", tmp_path, ["timeout_min=600",
                        "slurm_partition=gpu"])  # fmt: skip
    assert seen == {"name": "derain-smoke", "timeout_min": 600, "slurm_partition": "gpu"}
    monkeypatch.setitem(sys.modules, "submitit", None)  # the cluster extra not installed
    with pytest.raises(
        DerainError, match=r"submitit is not installed: pip install 'derain\[cluster\]'"
    ):
        launch_training(Params("smoke"), "slurm", Path("unused"))
    with pytest.raises(SystemExit) as e:  # argparse: not one of local, slurm
        main(["reproduce", "--profile", "smoke", "--launcher", "pbs"])
    assert e.value.code == 2 and "invalid choice: 'pbs'" in capsys.readouterr().err

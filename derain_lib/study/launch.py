"""``derain reproduce --launcher slurm|local``: the profile's training runs as cluster jobs.

The runs of :func:`~.training.planned_runs` not finished in the run cache go out as one job
array through `submitit <https://github.com/facebookincubator/submitit>`_ (the ``cluster``
extra): ``slurm``, one task per run; ``local``, one process per usable CPU core, the runs dealt
as torchrun's processes share them (:func:`~.training.deal`). Each task trains into the shared
run cache as ``derain train`` would, so the notebooks that run afterwards find every run there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..errors import DerainError
from ..runs import Run, find_run
from ..threads import usable_cpus
from .plan import Params
from .training import alone, deal, planned_runs, run_cost, train_run

#: What ``--launcher`` takes (submitit's executors).
LAUNCHERS = ("local", "slurm")
#: Each job's time limit unless ``--launcher-set timeout_min=N`` (submitit's default, 5 min,
#: would stop any real training run).
TIMEOUT_MIN = 24 * 60


class LaunchFailed(DerainError):
    """A training job failed or could not be submitted; names the job and its log."""


def train_job(runs: list[tuple[str, Config]]) -> list[str]:
    """One task of the job array: each run's key, or its ``not run: ...`` status."""
    out = []
    with alone():
        for label, cfg in runs:
            run = train_run(label, cfg)
            out.append(run.key if isinstance(run, Run) else run)
    return out


def job_options(items: list[str]) -> dict[str, object]:
    """``--launcher-set KEY=VALUE`` as submitit parameters (``timeout_min=600``,
    ``slurm_partition=gpu``, ``gpus_per_node=1``); integers as integers."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DerainError(f"--launcher-set {item!r}: expected KEY=VALUE, e.g. timeout_min=600")
        out[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    return out


def launch_training(
    p: Params,
    launcher: str,
    folder: Path,
    options: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Submit the runs of ``p`` not finished as one job array with ``launcher``, job logs under
    ``folder``; wait for them all; their run keys (or ``not run`` statuses). A failed task
    raises :class:`LaunchFailed` naming it and its log, after every task has ended."""
    try:
        import submitit  # the cluster extra
    except ImportError:
        raise DerainError(
            f"--launcher {launcher}: submitit is not installed: pip install 'derain[cluster]'"
        ) from None
    if launcher not in LAUNCHERS:
        raise DerainError(f"--launcher {launcher!r}: choose {' or '.join(LAUNCHERS)}")
    todo = [(label, cfg) for label, cfg in planned_runs(p) if find_run(cfg).status != "finished"]
    if not todo:
        log("launcher: every training run is in the run cache; nothing to submit")
        return []
    executor = submitit.AutoExecutor(folder=folder, cluster=launcher)
    try:
        executor.update_parameters(
            name=f"derain-{p.profile}", timeout_min=TIMEOUT_MIN, **job_options(options or [])
        )
    except (TypeError, ValueError) as e:
        raise DerainError(f"--launcher-set: {e}") from None
    n = len(todo) if launcher == "slurm" else min(len(todo), usable_cpus())
    owner = deal([run_cost(cfg) for _, cfg in todo], n)
    tasks = [[run for run, o in zip(todo, owner, strict=True) if o == t] for t in range(n)]
    try:
        jobs = executor.map_array(train_job, tasks)
    except Exception as e:  # sbatch missing or refusing: submitit raises its own types
        raise LaunchFailed(f"--launcher {launcher}: submission failed: {e}") from None
    log(f"launcher: {len(todo)} training runs submitted as {n} tasks of job array "
        f"{jobs[0].job_id.split('_')[0]} ({launcher}; logs {folder})")  # fmt: skip
    keys, failed = [], []
    for task, job in zip(tasks, jobs, strict=True):
        labels = "; ".join(label for label, _ in task)
        try:
            keys += job.result()
            log(f"launcher: job {job.job_id} done: {labels}")
        except Exception as e:  # the task's exception, re-raised by submitit with its log
            why = str(e).strip().splitlines()
            failed.append(f"job {job.job_id} ({labels}): {why[-1] if why else type(e).__name__}")
    if failed:
        raise LaunchFailed(
            f"{len(failed)} of {len(jobs)} training jobs failed, first {failed[0]}; logs in "
            f"{folder}"
        )
    return keys

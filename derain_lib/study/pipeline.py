"""``derain reproduce``: the training runs, then the notebooks (papermill), tables and report."""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from unittest import mock

from omegaconf import OmegaConf

from .. import threads
from ..config import Config, profile_config, profile_datasets
from ..device import device_name, resolve_device
from ..errors import DerainError
from ..fsutil import REPRODUCE_ENV, locked, notebooks_dir
from ..runs import Run, find_run, git_sha
from ..train import dist_info
from . import plan
from .plan import Params, figures_dir, results_dir, shown, write_json
from .report import export_report
from .tabulate import build_tables, not_run_items
from .training import ALONE, deal, planned_runs, run_cost, share_training, train_run

NOTEBOOKS = tuple(f"{name}.ipynb" for name in ("00_data", "01_train", "02_table2_loss",
    "03_tables3_4_benchmarks", "04_table5_ablation", "05_figures", "06_attention_explorer",
    "07_beyond_the_paper", "08_claims"))  # fmt: skip
KERNEL = "derain"  # installed into the venv by `make setup` (ipykernel install --sys-prefix)


def kernel_name() -> str:
    """The fixed kernel: ``derain`` when installed, else the environment's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager  # optional heavy dependency

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def missing_items(profile: str, executed: Iterable[str]) -> list[dict]:
    """What the ``executed`` notebooks did not do (their saved results), figures included."""
    figures = [{"notebook": nb, "what": f"figures/{profile}/{name} was not drawn"}
               for nb in executed for name in plan.PLAN["promised_figures"].get(nb, ())
               if not (figures_dir(profile) / name).is_file()]  # fmt: skip
    return [i for i in not_run_items(profile) if i["notebook"] in executed] + figures


def clear_stale_figures(profile: str, since: float) -> list[Path]:
    """Remove the figures of ``profile`` not written since ``since`` (a full run's start)."""
    gone = sorted(f for f in figures_dir(profile).glob("*.png") if f.stat().st_mtime < since)
    for f in gone:
        f.unlink()
    return gone


def train_job(runs: list[tuple[str, Config]]) -> list[str]:
    """One task of a launched job array: each run's key, or its ``not run: ...`` status."""
    with mock.patch.dict(os.environ, ALONE):
        return [r.key if isinstance(r := train_run(label, cfg), Run) else r for label, cfg in runs]


def launch_training(p: Params, launcher: str, folder: Path, options: list[str] | None = None,
                    log: Callable[[str], None] = print) -> None:  # fmt: skip
    """The runs of ``p`` not in the run cache as one submitit job array; waits for every task.
    ``options``: ``--launcher-set KEY=VALUE`` items, submitit's parameters typed as YAML."""
    if bad := [i for i in options or [] if "=" not in i or not i.partition("=")[0].strip()]:
        raise DerainError(f"--launcher-set {bad[0]!r}: expected KEY=VALUE, e.g. timeout_min=600")
    try:
        import submitit  # the cluster extra
    except ImportError:
        raise DerainError(f"--launcher {launcher}: submitit is not installed: pip install "
                          "'derain[cluster]'") from None  # fmt: skip
    todo = [(label, cfg) for label, cfg in planned_runs(p) if find_run(cfg).status != "finished"]
    if not todo:
        return log("launcher: every training run is in the run cache; nothing to submit")
    n = len(todo) if launcher == "slurm" else min(len(todo), threads.usable_cpus())
    owner = deal([run_cost(cfg) for _, cfg in todo], n)
    tasks = [[run for run, o in zip(todo, owner, strict=True) if o == t] for t in range(n)]
    executor = submitit.AutoExecutor(folder=folder, cluster=launcher)
    try:  # a day per job unless --launcher-set timeout_min=N (submitit's default: 5 min)
        items = [f"name=derain-{p.profile}", "timeout_min=1440", *(options or [])]  # last wins
        executor.update_parameters(**OmegaConf.to_container(OmegaConf.from_dotlist(items)))
        jobs = executor.map_array(train_job, tasks)
    except Exception as e:  # a bad --launcher-set, sbatch missing or refusing: submitit's types
        raise DerainError(f"--launcher {launcher}: submission failed: {e}") from None
    log(f"launcher: {len(todo)} training runs submitted as {n} tasks of job array "
        f"{jobs[0].job_id.split('_')[0]} ({launcher}; logs {folder})")  # fmt: skip
    failed = []
    for task, job in zip(tasks, jobs, strict=True):
        labels = "; ".join(label for label, _ in task)
        try:
            job.result()
            log(f"launcher: job {job.job_id} done: {labels}")
        except Exception as e:  # the task's exception, re-raised by submitit with its log
            why = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            failed.append(f"job {job.job_id} ({labels}): {why}")
    if failed:
        raise DerainError(f"{len(failed)} of {len(jobs)} training jobs failed, first "
                          f"{failed[0]}; logs in {folder}")  # fmt: skip


def run_pipeline(
    profile: str, data_root: str | Path | None = None, weights_dir: str | Path | None = None,
    overrides: list[str] | None = None, notebooks: tuple[str, ...] = NOTEBOOKS,
    log: Callable[..., None] = print, use_prepared: bool = False, wait: bool = False,
    device: str = "auto", launcher: str | None = None, launcher_options: list[str] | None = None,
) -> dict:  # fmt: skip
    """Check the inputs, train, then run the notebooks, tables and report: ``provenance.json``."""
    for dataset in profile_datasets(profile) or [None]:  # before results/ is touched
        profile_config(profile, dataset, list(overrides or []))
    if not (todo := [nb for nb in notebooks if (notebooks_dir() / nb).is_file()]):
        raise DerainError(f"{notebooks_dir()}: notebooks not found (run from a source checkout)")
    rank, world, local_rank = dist_info()
    used = device_name(resolve_device(device, local_rank))
    log = functools.partial(log, flush=True)  # each line as it happens
    log(f"device: {used} (--device {device})")
    # the notebooks' parameters, folders as the records show them ($DERAIN_DATA/...)
    params = dict(profile=profile, data_root=data_root and shown(data_root),
                  weights_dir=weights_dir and shown(weights_dir),
                  overrides=list(overrides or []), device=device)  # fmt: skip
    p = Params(**params)
    if launcher:  # each training run a cluster job; the notebooks then read the run cache
        launch_training(p, launcher, results_dir(profile) / ".submitit", launcher_options, log)
    if world > 1:  # under torchrun: each process trains its share of the runs first
        share_training(p, log=log)
        if rank != 0:
            log(f"process {rank}: its share of the runs is trained; process 0 runs the notebooks")
            return {"profile": profile, "rank": rank}
        os.environ.update(ALONE)  # the notebooks' kernels train alone
    threads.configure()  # the kernels inherit the OpenMP settings (derain_lib/threads.py)
    facts = plan.work_dir(profile) / "run_facts.jsonl"
    env = {REPRODUCE_ENV: str(facts), plan.USE_PREPARED_ENV: "1" if use_prepared else ""}
    with (
        locked(results_dir(profile), wait, what=f"profile ({profile})"),
        mock.patch.dict(os.environ, env),
    ):
        log("\n".join(plan.data_lines(p)))
        return _run_notebooks(params, used, todo, [nb for nb in notebooks if nb not in todo],
                              facts, log)  # fmt: skip


def _run_notebooks(params: dict, used: str, todo: list[str], missing: list[str], facts: Path,
                   log: Callable[..., None]) -> dict:  # fmt: skip
    """:func:`run_pipeline` once the profile is locked (a failure keeps the last figure index)."""
    import papermill as pm  # optional heavy dependency

    profile, src_dir = params["profile"], notebooks_dir()
    res, out_dir = results_dir(profile), results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    facts.parent.mkdir(parents=True, exist_ok=True)
    facts.unlink(missing_ok=True)
    index, full = res / "figures.json", tuple(todo) == NOTEBOOKS  # a full run: figures afresh
    last_good = index.read_text() if full and index.is_file() else None
    if full:
        index.unlink(missing_ok=True)
    record = {
        "profile": profile, "parameters": params, "kernel": (kernel := kernel_name()),
        "device": used, "git_sha": git_sha(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": list(os.getloadavg()),
        "thread_settings": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")},
        "notebooks": {}, "run_facts": {},
    }  # fmt: skip
    t_all, started = time.perf_counter(), time.time()
    try:
        for i, nb in enumerate(todo, 1):
            saved, t0 = out_dir / nb, time.perf_counter()
            log(f"[{i}/{len(todo)}] {nb} ...")
            try:  # the kernel: no log of its own, its stderr ours (the progress channel)
                pm.execute_notebook(str(src_dir / nb), str(saved), parameters=params,
                                    kernel_name=kernel, language="python", cwd=str(src_dir),
                                    progress_bar=False, extra_arguments=["--log-level=CRITICAL",
                                    "--IPKernelApp.capture_fd_output=False"])  # fmt: skip
            except Exception as e:  # papermill's own error names the cell
                why = f": {type(e).__name__}: {e}"
                if isinstance(e, pm.PapermillExecutionError):
                    sys.stderr.write(f"--- failing cell {e.cell_index} of {nb}:\n{e.source}\n---\n")
                    why = (f" in cell {e.cell_index} (execution count {e.exec_count}): "
                           f"{e.ename}: {e.evalue}")  # fmt: skip
                raise DerainError(f"notebook {nb} failed{why}; executed copy: {saved}") from None
            record["notebooks"][nb] = round(dt := time.perf_counter() - t0, 1)
            if facts.is_file():
                record["run_facts"][nb] = dict(map(json.loads, facts.read_text().splitlines()))
                facts.unlink()
            write_json(res / "provenance.json", record)
            log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {shown(saved)}")
    except BaseException:  # interrupted too: the last good run's figure index comes back
        if last_good is not None:
            index.write_text(last_good)
        raise
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    for gone in clear_stale_figures(profile, started) if full else ():
        log(f"removed {gone}: not drawn by this run")
    record["skipped"], record["not_run"] = missing, missing_items(profile, todo)
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(res / "provenance.json", record)
    md = build_tables(profile)
    # every chapter executed so far (a run of some notebooks keeps the others' pages)
    report = export_report(profile, [out_dir / nb for nb in NOTEBOOKS if (out_dir / nb).is_file()])
    for item in record["not_run"]:
        log(f"not run ({item['notebook']}): {item['what']}")
    n = len(record["not_run"])
    done = f"done with {n} item{'s' * (n != 1)} not run (above)" if n else "done"
    log(f"profile {profile}: {done} in {record['wall_seconds']:.1f} s; tables: {md}; "
        f"report: {report}")  # fmt: skip
    return record

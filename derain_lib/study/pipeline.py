"""Run the study's notebooks in order with papermill, then build the tables and the report.

``derain reproduce --profile quick`` executes :data:`NOTEBOOKS` with a fixed kernel and working
directory (``notebooks/``), one progress line per notebook, and saves the executed copies under
``results/<profile>/notebooks/``. Each notebook writes its artifacts under ``results/<profile>/``
and ``figures/<profile>/``; the next one reads them; expensive work goes through the run cache.

The kernels run with env :data:`~derain_lib.roots.REPRODUCE_ENV` set and without ipykernel's
capture of the process's own output: what a notebook reports with :func:`~.paths.progress`
(which model trains, its step, loss and ETA) goes straight to this terminal's stderr, never
into the executed notebook, and its :func:`~.paths.run_fact` lines to the file the variable
names, kept in ``provenance.json``. Figures are not deleted before they are redrawn; those a
full run did not draw again are removed at its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

from ..config import profile_config, profile_datasets, resolve_config_path
from ..device import device_name, resolve_device
from ..errors import DerainError
from ..fsutil import locked
from ..roots import REPRODUCE_ENV, notebooks_dir
from ..runs import git_sha
from ..threads import configure as configure_threads
from ..train import dist_info
from .launch import launch_training
from .paths import clear_stale_figures, figures_dir, results_dir, shown, work_dir, write_json
from .plan import USE_PREPARED_ENV, Params, data_lines
from .report import export_report
from .tabulate import build_tables
from .tabulate import not_run_items as saved_not_run_items
from .training import share_training

NOTEBOOKS = (
    "00_data.ipynb",
    "01_train.ipynb",
    "02_table2_loss.ipynb",
    "03_tables3_4_benchmarks.ipynb",
    "04_table5_ablation.ipynb",
    "05_figures.ipynb",
    "06_attention_explorer.ipynb",
    "07_beyond_the_paper.ipynb",
    "08_claims.ipynb",
)
#: The figures the README promises per notebook; the summary names any not drawn.
PROMISED_FIGURES = {
    "05_figures.ipynb": ("samples.png", "training_curves.png"),
    "06_attention_explorer.ipynb": ("attention_panel.png",),
    "08_claims.ipynb": ("claims_forest.png",),
}
KERNEL = "derain"  # installed into the venv by `make setup` (ipykernel install --sys-prefix)
#: The kernel logs nothing of its own (not its "running over TCP without encryption" warning) and
#: leaves its stderr to this process's: the progress channel (module docstring).
KERNEL_ARGS = ["--log-level=CRITICAL", "--IPKernelApp.capture_fd_output=False"]


class NotebookFailed(DerainError):
    """A notebook of the pipeline raised: names the notebook, the cell and the error."""


def kernel_name() -> str:
    """The fixed kernel: ``derain`` when installed, else the environment's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager  # optional heavy dependency

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def failure_message(nb: str, saved: Path, err: Exception) -> str:
    """One line for the CLI; the failing cell's source goes to stderr before it."""
    from papermill.exceptions import PapermillExecutionError  # optional heavy dependency

    if isinstance(err, PapermillExecutionError):
        print(f"--- failing cell {err.cell_index} of {nb}:\n{err.source}\n---", file=sys.stderr)
        return (
            f"notebook {nb} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}; executed copy: {saved}"
        )
    return f"notebook {nb} failed: {type(err).__name__}: {err}; executed copy: {saved}"


def missing_items(profile: str, executed: dict[str, Path]) -> list[dict]:
    """What the ``executed`` notebooks did not do, read from the results they saved
    (:func:`~.tabulate.not_run_items`), and each of their :data:`PROMISED_FIGURES` missing."""
    items = [i for i in saved_not_run_items(profile) if i["notebook"] in executed]
    for nb in executed:
        for name in PROMISED_FIGURES.get(nb, ()):
            if not (figures_dir(profile) / name).is_file():
                items.append({"notebook": nb, "what": f"figures/{profile}/{name} was not drawn"})
    return items


def declared_parameters(notebook: Path, params: dict) -> dict:
    """The entries of ``params`` the notebook's ``parameters`` cell declares (papermill
    warns about any other)."""
    import papermill as pm  # optional heavy dependency

    try:
        declared = pm.inspect_notebook(str(notebook))
    except ValueError:  # no kernelspec in the file: papermill cannot read its parameters
        return dict(params)
    return {k: v for k, v in params.items() if k in declared}


def check_inputs(
    profile: str,
    data_root: str | Path | None,
    weights_dir: str | Path | None,
    overrides: list[str] | None,
) -> None:
    """Everything ``derain reproduce`` can check before it touches ``results/`` or
    ``figures/``: the profile, every override on every data set of the profile, the data
    root and the weights folder. A problem is a one-line error."""
    resolve_config_path(profile)  # an unknown profile
    for name, folder in (("--data-root", data_root), ("--weights-dir", weights_dir)):
        if folder and not Path(folder).expanduser().is_dir():
            raise DerainError(f"{name} {folder}: no such folder")
    for dataset in profile_datasets(profile) or [None]:
        profile_config(profile, dataset, list(overrides or []))


@contextlib.contextmanager
def kept_on_failure(*paths: Path) -> Iterator[None]:
    """Move ``paths`` aside for the body; put them back if it raises (or is interrupted),
    drop the saved copies if it succeeds."""
    saved = {p: p.with_name(f".{p.name}.last-good") for p in paths if p.is_file()}
    for p, keep in saved.items():
        os.replace(p, keep)
    try:
        yield
    except BaseException:
        for p, keep in saved.items():
            os.replace(keep, p)
        raise
    for keep in saved.values():
        keep.unlink(missing_ok=True)


def run_pipeline(
    profile: str,
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    log: Callable[..., None] = print,
    use_prepared: bool = False,
    wait: bool = False,
    device: str = "auto",
    launcher: str | None = None,
    launcher_options: list[str] | None = None,
) -> dict:
    """Execute the notebooks in order with papermill; write the tables and the HTML report;
    return the record written as ``provenance.json``.

    Before anything under ``results/`` or ``figures/`` changes, the inputs are checked
    (:func:`check_inputs`) and ``results/<profile>/`` is locked (another ``reproduce`` of
    the profile is refused naming its process, or waited for with ``wait``). ``launcher``:
    the training runs go out as cluster jobs first (:func:`~.launch.launch_training`). Under
    torchrun each process first trains its share of the runs
    (:func:`~.training.share_training`); then process 0 alone runs the notebooks.

    ``provenance.json`` (parameters, kernel, git SHA, machine, device, wall time per notebook,
    the notebooks' run facts, what did not run) is rewritten after each notebook that
    succeeded. A failing notebook raises :class:`NotebookFailed` naming it and its cell; the
    last run's ``figures.json`` is then put back and no figure is removed.
    """
    import papermill as pm  # optional heavy dependency

    check_inputs(profile, data_root, weights_dir, overrides)
    data_root, weights_dir = (Path(d).expanduser().resolve() if d else None
                              for d in (data_root, weights_dir))  # fmt: skip
    src_dir = notebooks_dir()
    missing = [nb for nb in notebooks if not (src_dir / nb).is_file()]
    if not src_dir.is_dir() or len(missing) == len(notebooks):
        raise DerainError(f"{src_dir}: notebooks not found (run from a source checkout)")
    rank, world, local_rank = dist_info()
    used = device_name(resolve_device(device, local_rank))
    log(f"device: {used} (--device {device})", flush=True)
    params = {  # as the records show them: relative to the project, $DERAIN_DATA/...
        "profile": profile,
        "data_root": shown(data_root) if data_root else None,
        "weights_dir": shown(weights_dir) if weights_dir else None,
        "overrides": list(overrides or []),
        "device": device,
    }
    p = Params(profile, params["data_root"], params["weights_dir"], tuple(overrides or ()), device)
    if launcher:  # each training run a cluster job; the notebooks then read the run cache
        folder = results_dir(profile) / ".submitit"
        launch_training(p, launcher, folder, launcher_options, lambda s: log(s, flush=True))
    if world > 1:  # under torchrun: each process trains its share of the runs first
        share_training(p, log=lambda line: log(line, flush=True))
        if rank != 0:
            log(f"process {rank}: its share of the runs is trained; process 0 runs the notebooks")
            return {"profile": profile, "rank": rank}
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1"})  # the notebooks' kernels: alone
    configure_threads()  # the kernels inherit the OpenMP settings (derain_lib/threads.py)
    res = results_dir(profile)
    facts = work_dir(profile) / "run_facts.jsonl"
    env = {REPRODUCE_ENV: str(facts), **({USE_PREPARED_ENV: "1"} if use_prepared else {})}
    with locked(res, wait, what=f"profile ({profile})"), mock.patch.dict(os.environ, env):
        if not use_prepared:
            os.environ.pop(USE_PREPARED_ENV, None)
        for line in data_lines(Params(profile, str(data_root) if data_root else None)):
            log(line, flush=True)
        todo = tuple(nb for nb in notebooks if nb not in missing)
        # a full run records its figures afresh (figures.json); the last good run's come
        # back if this one fails
        with kept_on_failure(*([res / "figures.json"] if todo == NOTEBOOKS else [])):
            return _run_notebooks(pm, params, used, todo, missing, facts, log)


def _run_notebooks(pm, params: dict, used: str, todo, missing, facts: Path, log) -> dict:
    """:func:`run_pipeline`'s work once the inputs are checked and the profile locked."""
    profile, src_dir = params["profile"], notebooks_dir()
    out_dir = results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    facts.parent.mkdir(parents=True, exist_ok=True)
    facts.unlink(missing_ok=True)
    kernel = kernel_name()
    record = {
        "profile": profile,
        "parameters": params,
        "kernel": kernel,
        "device": used,
        "git_sha": git_sha(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average": list(os.getloadavg()),
        "thread_settings": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")},
        "notebooks": {},
        "run_facts": {},
    }
    t_all, started = time.perf_counter(), time.time()
    for i, nb in enumerate(todo, 1):
        saved = out_dir / nb
        t0 = time.perf_counter()
        log(f"[{i}/{len(todo)}] {nb} ...", flush=True)
        try:
            pm.execute_notebook(
                str(src_dir / nb),
                str(saved),
                parameters=declared_parameters(src_dir / nb, params),
                kernel_name=kernel,
                language="python",
                cwd=str(src_dir),
                progress_bar=False,
                extra_arguments=KERNEL_ARGS,
            )
        except Exception as e:  # papermill wraps any cell error; name the notebook and cell
            raise NotebookFailed(failure_message(nb, saved, e)) from None
        dt = time.perf_counter() - t0
        record["notebooks"][nb] = round(dt, 1)
        if facts.is_file():
            record["run_facts"][nb] = dict(map(json.loads, facts.read_text().splitlines()))
            facts.unlink()
        write_json(results_dir(profile) / "provenance.json", record)
        log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {shown(saved)}", flush=True)
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    if todo == NOTEBOOKS:  # every drawing notebook ran: what it did not redraw is stale
        for gone in clear_stale_figures(profile, started):
            log(f"removed {gone}: not drawn by this run")
    record["skipped"] = missing
    record["not_run"] = missing_items(profile, {nb: out_dir / nb for nb in todo})
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(results_dir(profile) / "provenance.json", record)
    md = build_tables(profile)
    # every chapter executed so far (a run of some notebooks keeps the others' pages)
    index = export_report(profile, [out_dir / nb for nb in NOTEBOOKS if (out_dir / nb).is_file()])
    for item in record["not_run"]:
        log(f"not run ({item['notebook']}): {item['what']}")
    n = len(record["not_run"])
    done = f"done with {n} item{'s' * (n != 1)} not run (above)" if n else "done"
    took = f"{record['wall_seconds']:.1f} s"
    log(f"profile {profile}: {done} in {took}; tables: {md}; report: {index}")
    return record

"""Run the study's notebooks in order with papermill, then build the tables and the report.

``derain reproduce --profile quick`` executes ``notebooks/00_data.ipynb`` ... the last
chapter of :data:`NOTEBOOKS` (``08_claims.ipynb``) with a fixed kernel and working directory
(``notebooks/``), one progress line per notebook, and saves the executed copies under
``results/<profile>/notebooks/``. Each notebook writes its artifacts under
``results/<profile>/`` and ``figures/<profile>/``; the next one reads them. Expensive work
goes through the run cache, so a re-run reuses finished runs.

While a notebook runs, what it reports with :func:`~.paths.progress` (which model trains,
its step, loss and ETA) is relayed to the terminal from a progress file, so the executed
notebooks hold no timing. The closing summary names what did not run, read from the saved
results (score records not run or degenerate, training runs that did not finish), and
figures of :data:`PROMISED_FIGURES` not drawn. Figures are
not deleted before they are redrawn (an unchanged figure stays byte-identical); those the
run did not draw again are removed at its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..config import profile_config, profile_datasets, resolve_config_path
from ..device import device_name, resolve_device
from ..errors import DerainError
from ..fsutil import locked
from ..roots import REPRODUCE_ENV, notebooks_dir
from ..runs import git_sha
from ..threads import configure as configure_threads
from ..train import dist_info
from .launch import launch_training
from .paths import (
    PROGRESS_ENV,
    RUN_FACTS_ENV,
    clear_stale_figures,
    figures_dir,
    results_dir,
    shown,
    write_json,
)
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
#: The kernel logs errors only: not its "running over TCP without encryption" warning (the
#: kernel listens on localhost, for this process alone).
KERNEL_ARGS = ["--log-level=ERROR"]


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
        print(f"--- failing cell {err.cell_index} of {nb}:", file=sys.stderr)
        print(err.source, file=sys.stderr)
        print("---", file=sys.stderr)
        return (
            f"notebook {nb} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}; executed copy: {saved}"
        )
    return f"notebook {nb} failed: {type(err).__name__}: {err}; executed copy: {saved}"


@contextlib.contextmanager
def _env_file(var: str, prefix: str) -> Iterator[Path]:
    """A fresh empty file outside the project, named in env ``var`` for the body (the
    notebook kernels inherit it); the variable is restored and the file removed at the end."""
    fd, name = tempfile.mkstemp(prefix=prefix)
    os.close(fd)
    before = os.environ.get(var)
    os.environ[var] = name
    try:
        yield Path(name)
    finally:
        if before is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = before
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def collected_facts() -> Iterator[dict]:
    """A dict that, at the end of the body, holds what its notebook recorded with
    :func:`~.paths.run_fact` (name -> value; the file is env :data:`~.paths.RUN_FACTS_ENV`)."""
    facts: dict = {}
    with _env_file(RUN_FACTS_ENV, "derain-facts-") as path:
        try:
            yield facts
        finally:
            for line in path.read_text().splitlines():
                item = json.loads(line)
                facts[item["name"]] = item["value"]


@contextlib.contextmanager
def relayed_progress(log: Callable[..., None], every: float = 0.5) -> Iterator[Path]:
    """A fresh progress file, named in env :data:`~.paths.PROGRESS_ENV` for the body (the
    notebook kernels inherit it); every ``every`` seconds its new lines go to ``log``. The
    file lives outside the project and is removed at the end."""
    stop = threading.Event()

    def relay(path: Path) -> None:
        with open(path) as f:
            pending = ""
            while True:
                stopping = stop.wait(every)
                pending += f.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    log(line, flush=True)
                if stopping:
                    return

    with _env_file(PROGRESS_ENV, "derain-progress-") as path:
        thread = threading.Thread(target=relay, args=(path,), daemon=True)
        thread.start()
        try:
            yield path
        finally:
            stop.set()
            thread.join()


def missing_items(profile: str, executed: dict[str, Path]) -> list[dict]:
    """What the ``executed`` notebooks (name -> executed copy) did not do, read from the
    results they saved (:func:`~.tabulate.not_run_items`: scores and runs not run or
    degenerate), and each of their :data:`PROMISED_FIGURES` missing from
    ``figures/<profile>/``."""
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
        return dict(params)  # (the runner names the kernel when it executes it)
    return {k: v for k, v in params.items() if k in declared}


def check_inputs(
    profile: str,
    data_root: str | Path | None,
    weights_dir: str | Path | None,
    overrides: list[str] | None,
) -> None:
    """Everything ``derain reproduce`` can check before it touches ``results/`` or
    ``figures/``: the profile, every override on every data set of the profile (values
    and ranges), the data root and the weights folder. A problem is one-line error."""
    resolve_config_path(profile)  # an unknown profile
    for name, folder in (("--data-root", data_root), ("--weights-dir", weights_dir)):
        if folder and not Path(folder).expanduser().is_dir():
            raise DerainError(f"{name} {folder}: no such folder")
    for dataset in profile_datasets(profile) or [None]:
        profile_config(profile, dataset, list(overrides or []))


@contextlib.contextmanager
def kept_on_failure(*paths: Path) -> Iterator[None]:
    """Move ``paths`` aside for the body; put them back if it raises (or is interrupted),
    drop the saved copies if it succeeds: a failed run leaves the last good run's files
    as they were."""
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


@contextlib.contextmanager
def _env(var: str, value: str | None) -> Iterator[None]:
    """Env ``var`` set to ``value`` (unset for None) for the body, then restored."""
    before = os.environ.get(var)
    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = before


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
    return the timing record.

    First, before anything under ``results/`` or ``figures/`` changes: the profile, the
    overrides, ``data_root`` and ``weights_dir`` are checked (:func:`check_inputs`), and
    an exclusive lock is taken on ``results/<profile>/`` (another ``reproduce`` of the
    profile is refused naming its process, or waited for with ``wait``). Then the data
    found is printed, one line per set and where it came from (:func:`plan.data_lines`;
    ``use_prepared``: the smoke profile reads prepared test sets too).

    Under torchrun (``WORLD_SIZE`` > 1) each process first trains its share of the
    profile's runs on its own device (:func:`~.training.share_training`); then process 0
    alone runs the notebooks from the run cache and the others return.

    Writes ``results/<profile>/notebooks/<name>`` for each, ``provenance.json`` (parameters
    as :func:`~.paths.shown`, kernel, git SHA, machine, the device models ran on
    (``device``: a parameter of every notebook), wall time per notebook, the
    notebooks' ``run_facts`` (:func:`~.paths.run_fact`), what did not run: the one file of
    the profile with wall-clock fields; rewritten atomically after each notebook that
    succeeded), ``tables.md`` and ``report/``. Each notebook gets the parameters its
    ``parameters`` cell declares. A failing notebook raises :class:`NotebookFailed` naming
    it and its failing cell; the previous run's ``figures.json`` is then put back, no
    figure is removed, and ``provenance.json`` is the previous run's (the first notebook
    failed) or names the notebooks of this run that succeeded.
    """
    import papermill as pm  # optional heavy dependency

    check_inputs(profile, data_root, weights_dir, overrides)
    # folders given relative to the working directory; the notebooks get them as shown
    data_root, weights_dir = (Path(d).expanduser().resolve() if d else None
                              for d in (data_root, weights_dir))  # fmt: skip
    src_dir = notebooks_dir()
    missing = [nb for nb in notebooks if not (src_dir / nb).is_file()]
    if not src_dir.is_dir() or len(missing) == len(notebooks):
        raise DerainError(f"{src_dir}: notebooks not found (run from a source checkout)")
    rank, world, local_rank = dist_info()
    used = resolve_device(device, local_rank)
    log(f"device: {device_name(used)} (--device {device})", flush=True)
    data, weights = (shown(d) if d else None for d in (data_root, weights_dir))
    p = Params(profile, data, weights, tuple(overrides or ()), device)
    if launcher:  # each training run a cluster job; the notebooks then read the run cache
        folder = results_dir(profile) / ".submitit"
        launch_training(p, launcher, folder, launcher_options, lambda s: log(s, flush=True))
    if world > 1:  # under torchrun: each process trains its share of the runs first
        share_training(p, log=lambda line: log(line, flush=True))
        if rank != 0:
            log(f"process {rank}: its share of the runs is trained; process 0 runs the notebooks")
            return {"profile": profile, "rank": rank}
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1"})  # the notebooks' kernels: alone
    kernel = kernel_name()
    configure_threads()  # the kernels inherit the OpenMP settings (derain_lib/threads.py)
    res = results_dir(profile)
    prepared = "1" if use_prepared else None
    with (
        locked(res, wait, what=f"profile ({profile})"),
        _env(USE_PREPARED_ENV, prepared),
        _env(REPRODUCE_ENV, "1"),
    ):
        for line in data_lines(Params(profile, str(data_root) if data_root else None)):
            log(line, flush=True)
        todo = tuple(nb for nb in notebooks if nb not in missing)
        # a full run records its figures afresh (figures.json: the captions, read by 05's
        # findings), so a first run and a re-run show the same pages; the last good run's
        # captions come back if this one fails. provenance.json is first rewritten when a
        # notebook has succeeded (then it says which did).
        kept = [res / "figures.json"] if todo == NOTEBOOKS else []
        with kept_on_failure(*kept):
            return _run_notebooks(
                pm, profile, data_root, weights_dir, overrides, device, todo, missing, kernel, log
            )


def _run_notebooks(
    pm, profile, data_root, weights_dir, overrides, device, todo, missing, kernel, log
) -> dict:
    """:func:`run_pipeline`'s work once the inputs are checked and the profile locked."""
    src_dir = notebooks_dir()
    out_dir = results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {  # as the records show them: relative to the project, $DERAIN_DATA/...
        "profile": profile,
        "data_root": shown(data_root) if data_root else None,
        "weights_dir": shown(weights_dir) if weights_dir else None,
        "overrides": list(overrides or []),
        "device": device,
    }
    record = {
        "profile": profile,
        "parameters": params,
        "kernel": kernel,
        "device": device_name(resolve_device(device, dist_info()[2])),
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
    executed = {}
    for i, nb in enumerate(todo, 1):
        saved = out_dir / nb
        t0 = time.perf_counter()
        log(f"[{i}/{len(todo)}] {nb} ...", flush=True)
        try:
            with relayed_progress(log), collected_facts() as facts:
                pm.execute_notebook(
                    str(src_dir / nb),
                    str(saved),
                    parameters=declared_parameters(src_dir / nb, params),
                    kernel_name=kernel,
                    language="python",
                    cwd=str(src_dir),
                    progress_bar=False,
                    log_output=False,
                    extra_arguments=KERNEL_ARGS,
                )
        except Exception as e:  # papermill wraps any cell error; name the notebook and cell
            raise NotebookFailed(failure_message(nb, saved, e)) from None
        dt = time.perf_counter() - t0
        executed[nb] = saved
        record["notebooks"][nb] = round(dt, 1)
        if facts:
            record["run_facts"][nb] = facts
        # the next notebooks read this run's parameters (tables.md's header)
        write_json(results_dir(profile) / "provenance.json", record)
        log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {shown(saved)}", flush=True)
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    if tuple(todo) == NOTEBOOKS:  # every drawing notebook ran: what it did not redraw is stale
        for gone in clear_stale_figures(profile, started):
            log(f"removed {gone}: not drawn by this run")
    record["skipped"] = missing
    record["not_run"] = missing_items(profile, executed)
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(results_dir(profile) / "provenance.json", record)
    md = build_tables(profile)
    # every chapter executed so far (a run of some notebooks keeps the others' pages)
    index = export_report(profile, [out_dir / nb for nb in NOTEBOOKS if (out_dir / nb).is_file()])
    for item in record["not_run"]:
        log(f"not run ({item['notebook']}): {item['what']}")
    n = len(record["not_run"])
    done = f"done with {n} item{'s' * (n != 1)} not run (above)" if n else "done"
    log(
        f"profile {profile}: {done} in {record['wall_seconds']:.1f} s; tables: {md}; "
        f"report: {index}"
    )
    return record

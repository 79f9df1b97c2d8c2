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

from ..config import resolve_config_path
from ..errors import DerainError
from ..runs import PROJECT_ROOT, git_sha
from ..threads import configure as configure_threads
from .figures import clear_stale_figures
from .paths import PROGRESS_ENV, RUN_FACTS_ENV, figures_dir, results_dir, write_json
from .report import export_report
from .tabulate import build_tables
from .tabulate import not_run_items as saved_not_run_items

ROOT = PROJECT_ROOT
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


def not_run_items(profile: str, executed: dict[str, Path]) -> list[dict]:
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


def run_pipeline(
    profile: str,
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    log: Callable[..., None] = print,
) -> dict:
    """Execute the notebooks in order with papermill; write the tables and the HTML report;
    return the timing record.

    Writes ``results/<profile>/notebooks/<name>`` for each, ``provenance.json`` (parameters,
    kernel, git SHA, machine, wall time per notebook, the notebooks' ``run_facts``
    (:func:`~.paths.run_fact`), what did not run: the one file of the profile with
    wall-clock fields), ``tables.md`` and ``report/``. Each notebook gets
    the parameters its ``parameters`` cell declares. A failing notebook raises
    :class:`NotebookFailed` naming it and its failing cell.
    """
    import papermill as pm  # optional heavy dependency

    configure_threads()  # the kernels inherit the OpenMP settings (derain_lib/threads.py)
    resolve_config_path(profile)  # an unknown profile fails here, before any notebook runs
    src_dir = ROOT / "notebooks"
    missing = [nb for nb in notebooks if not (src_dir / nb).is_file()]
    if not src_dir.is_dir() or len(missing) == len(notebooks):
        raise DerainError(f"{src_dir}: notebooks not found (run from a source checkout)")
    out_dir = results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {
        "profile": profile,
        "data_root": str(Path(data_root).resolve()) if data_root else None,
        "weights_dir": str(Path(weights_dir).resolve()) if weights_dir else None,
        "overrides": list(overrides or []),
    }
    kernel = kernel_name()
    record = {
        "profile": profile,
        "parameters": params,
        "kernel": kernel,
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
    todo = [nb for nb in notebooks if nb not in missing]
    # what the notebooks read of this run (tables.md's header: its parameters) is there from
    # the start, and a full run records its figures afresh (figures.json: the captions, read
    # by 05's findings), so a first run and a re-run show the same pages
    write_json(results_dir(profile) / "provenance.json", record)
    if tuple(todo) == NOTEBOOKS:
        (results_dir(profile) / "figures.json").unlink(missing_ok=True)
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
        log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {saved}", flush=True)
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    if tuple(todo) == NOTEBOOKS:  # every drawing notebook ran: what it did not redraw is stale
        for gone in clear_stale_figures(profile, started):
            log(f"removed {gone}: not drawn by this run")
    record["skipped"] = missing
    record["not_run"] = not_run_items(profile, executed)
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(results_dir(profile) / "provenance.json", record)
    md = build_tables(profile)
    index = export_report(profile, list(executed.values()))
    for item in record["not_run"]:
        log(f"not run ({item['notebook']}): {item['what']}")
    n = len(record["not_run"])
    done = f"done with {n} item{'s' * (n != 1)} not run (above)" if n else "done"
    log(
        f"profile {profile}: {done} in {record['wall_seconds']:.1f} s; tables: {md}; "
        f"report: {index}"
    )
    return record

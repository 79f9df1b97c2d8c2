"""Run the study's notebooks in order with papermill, then build the tables and the report.

``derain reproduce --profile quick`` executes ``notebooks/00_data.ipynb`` ... the last
chapter of :data:`NOTEBOOKS` (``08_claims.ipynb``) with a fixed kernel and working directory
(``notebooks/``), one progress line per notebook, and saves the executed copies under
``results/<profile>/notebooks/``. Each notebook writes its artifacts under
``results/<profile>/`` and ``figures/<profile>/``; the next one reads them. Expensive work
goes through the run cache, so a re-run reuses finished runs.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..config import resolve_config_path
from ..errors import DerainError
from ..runs import PROJECT_ROOT, git_sha
from ..threads import configure as configure_threads
from .figures import clear_figures
from .paths import results_dir, write_json
from .report import export_report
from .tabulate import build_tables

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
FIGURES_NOTEBOOK = "05_figures.ipynb"
KERNEL = "derain"  # installed into the venv by `make setup` (ipykernel install --sys-prefix)


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
    kernel, git SHA, machine, wall time per notebook), ``tables.md`` and ``report/``. A
    failing notebook raises :class:`NotebookFailed` naming it and its failing cell.
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
    }
    t_all = time.perf_counter()
    todo = [nb for nb in notebooks if nb not in missing]
    if FIGURES_NOTEBOOK in todo:
        clear_figures(profile)
    for i, nb in enumerate(todo, 1):
        saved = out_dir / nb
        t0 = time.perf_counter()
        log(f"[{i}/{len(todo)}] {nb} ...", flush=True)
        try:
            pm.execute_notebook(
                str(src_dir / nb),
                str(saved),
                parameters=params,
                kernel_name=kernel,
                language="python",
                cwd=str(src_dir),
                progress_bar=False,
                log_output=False,
            )
        except Exception as e:  # papermill wraps any cell error; name the notebook and cell
            raise NotebookFailed(failure_message(nb, saved, e)) from None
        dt = time.perf_counter() - t0
        record["notebooks"][nb] = round(dt, 1)
        log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {saved}", flush=True)
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    record["skipped"] = missing
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(results_dir(profile) / "provenance.json", record)
    md = build_tables(profile)
    index = export_report(profile, [out_dir / nb for nb in todo])
    log(f"profile {profile}: {record['wall_seconds']:.1f} s; tables: {md}; report: {index}")
    return record

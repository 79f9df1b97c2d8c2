"""Where a profile's results and figures live (under :func:`~derain_lib.roots.results_root`
and :func:`~derain_lib.roots.figures_root`), and how the study writes its JSON records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DerainError
from ..fsutil import atomic_write_text, shown_path
from ..roots import figures_root, results_root


def results_dir(profile: str) -> Path:
    """``results/<profile>/``: every table, score record and executed notebook of a profile."""
    return results_root().resolve() / profile


def work_dir(profile: str) -> Path:
    """``results/<profile>/run-state/`` (not committed): the pipeline's working records (score
    records with why a method did not run, the training runs taken, each image's scene),
    kept between steps of one run; the committed record is ``scores.csv``."""
    return results_dir(profile) / "run-state"


def scenes_path(profile: str) -> Path:
    return work_dir(profile) / "scenes.json"


def read_scenes(profile: str) -> dict[str, dict[str, str]]:
    """Test set label -> image name -> scene (``run-state/scenes.json``)."""
    p = scenes_path(profile)
    return json.loads(p.read_text()) if p.is_file() else {}


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/``: the PNGs notebook 05 draws from ``results/<profile>/``."""
    return figures_root() / profile


def shown(path: str | Path) -> str:
    """``path`` for a notebook's printed output and the study's records: relative to the
    project when inside it or beside it, else ``$DERAIN_DATA/...``/``$DERAIN_CACHE/...``
    (:func:`derain_lib.fsutil.shown_path`), so an executed notebook, a table and a report
    read the same in every checkout and name no folder of the machine that made them."""
    return shown_path(path)


def write_json(path: Path, obj: object) -> Path:
    """``obj`` as indented JSON at ``path``, written atomically (parent folders created)."""
    return atomic_write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def read_json(path: Path, hint: str) -> object:
    """The JSON at ``path``; a missing file is a one-line error that says ``hint``."""
    if not path.is_file():
        raise DerainError(f"{path}: missing; {hint}")
    return json.loads(path.read_text())


#: The file ``derain reproduce`` tails while a notebook runs (set for the notebook's kernel).
PROGRESS_ENV = "DERAIN_PROGRESS"


def progress(line: str) -> None:
    """Append ``line`` to the pipeline's progress file (env :data:`PROGRESS_ENV`), which
    ``derain reproduce`` relays to the terminal; without the variable (a notebook opened
    by hand) print it. Progress never goes into a notebook run by the pipeline, so its
    executed copy does not depend on timing."""
    _append_or_print(PROGRESS_ENV, line.rstrip("\n"), line)


#: The file a notebook run by ``derain reproduce`` appends its run facts to.
RUN_FACTS_ENV = "DERAIN_RUN_FACTS"


def run_fact(name: str, value: object) -> None:
    """Record a fact of this run that differs from run to run (times, load average): with
    env :data:`RUN_FACTS_ENV` set (the pipeline's kernels) it goes to that file, which the
    pipeline keeps in ``provenance.json`` (``run_facts``), so results, tables and the executed
    notebook stay the same on a re-run; without it (a notebook opened by hand) it is printed."""
    record = json.dumps({"name": name, "value": value}, default=str)
    _append_or_print(RUN_FACTS_ENV, record, f"{name}: {json.dumps(value, default=str)}")


def _append_or_print(var: str, line: str, printed: str) -> None:
    """``line`` appended to the file named in env ``var`` (set by the pipeline for its
    kernels); without it (a notebook opened by hand) ``printed`` goes to standard output."""
    target = os.environ.get(var)
    if not target:
        print(printed, flush=True)
        return
    with open(target, "a") as f:
        f.write(line + "\n")


def clear_stale_figures(profile: str, since: float) -> list[Path]:
    """Remove the figures of ``figures/<profile>/`` last written before ``since`` (a
    ``time.time()``: the start of a pipeline run that redrew every figure) and their
    captions in ``figures.json``, so no figure of another run or data set survives while
    figures the run redrew stay untouched in between. Returns what went."""
    gone = sorted(f for f in figures_dir(profile).glob("*.png") if f.stat().st_mtime < since)
    for f in gone:
        f.unlink()
    index = results_dir(profile) / "figures.json"
    if index.is_file():
        figs = json.loads(index.read_text())
        kept = [f for f in figs if (figures_dir(profile) / Path(f["path"]).name).is_file()]
        if kept != figs:
            write_json(index, kept)
    return gone

"""Where a profile's results and figures live (under :func:`~derain_lib.roots.results_root`
and :func:`~derain_lib.roots.figures_root`), and how the study writes its JSON records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import DerainError
from ..fsutil import atomic_write_text
from ..fsutil import shown_path as shown  # noqa: F401  (how notebooks and records name paths)
from ..roots import REPRODUCE_ENV, figures_root, results_root


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


def write_json(path: Path, obj: object) -> Path:
    """``obj`` as indented JSON at ``path``, written atomically (parent folders created)."""
    return atomic_write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def read_json(path: Path, hint: str) -> object:
    """The JSON at ``path``; a missing file is a one-line error that says ``hint``."""
    if not path.is_file():
        raise DerainError(f"{path}: missing; {hint}")
    return json.loads(path.read_text())


def progress(line: str) -> None:
    """Report ``line`` while a notebook runs: under ``derain reproduce`` to the kernel's own
    stderr, which is the terminal of ``derain reproduce`` and never the executed notebook (so
    it holds no timing); in a notebook run by hand, printed."""
    print(line, file=sys.__stderr__ if os.environ.get(REPRODUCE_ENV) else sys.stdout, flush=True)


def run_fact(name: str, value: object) -> None:
    """Record a fact of this run that differs from run to run (times, load average): under
    ``derain reproduce`` appended to the file env :data:`~derain_lib.roots.REPRODUCE_ENV`
    names, which the pipeline keeps in ``provenance.json`` (``run_facts``), so results and the
    executed notebook stay the same on a re-run; in a notebook run by hand, printed."""
    target = os.environ.get(REPRODUCE_ENV)
    if not target:
        print(f"{name}: {json.dumps(value, default=str)}", flush=True)
        return
    with open(target, "a") as f:
        f.write(json.dumps([name, value], default=str) + "\n")


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

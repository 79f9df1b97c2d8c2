"""Where a profile's results and figures live, and how the study writes its JSON records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DerainError
from ..fsutil import atomic_write_text, project_root
from ..runs import results_root


def figures_root() -> Path:
    """Where ``figures/`` lives: env ``DERAIN_FIGURES``, else ``figures/`` in the project
    (the folder holding ``pyproject.toml`` at or above the working directory), as
    :func:`derain_lib.runs.results_root` finds ``results/``."""
    return Path(os.environ.get("DERAIN_FIGURES") or project_root() / "figures").resolve()


def results_dir(profile: str) -> Path:
    """``results/<profile>/``: every table, score record and executed notebook of a profile."""
    return results_root().resolve() / profile


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

"""Where a profile's results and figures live, and how the study writes its JSON records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DerainError
from ..runs import PROJECT_ROOT, results_root


def figures_root() -> Path:
    """Where ``figures/`` lives: env ``DERAIN_FIGURES`` or ``<project>/figures``."""
    return Path(os.environ.get("DERAIN_FIGURES", PROJECT_ROOT / "figures")).resolve()


def results_dir(profile: str) -> Path:
    """``results/<profile>/``: every table, score record and executed notebook of a profile."""
    return results_root().resolve() / profile


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/``: the PNGs notebook 05 draws from ``results/<profile>/``."""
    return figures_root() / profile


def write_json(path: Path, obj: object) -> Path:
    """``obj`` as indented JSON at ``path`` (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    return path


def read_json(path: Path, hint: str) -> object:
    """The JSON at ``path``; a missing file is a one-line error that says ``hint``."""
    if not path.is_file():
        raise DerainError(f"{path}: missing; {hint}")
    return json.loads(path.read_text())

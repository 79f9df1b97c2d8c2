"""Where derain reads and writes: the project, ``results/`` and ``figures/`` (the one resolver;
it imports nothing of the package and no torch). The rules are :data:`RESULTS_DEFAULT`."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

import platformdirs

#: The folder of the imported ``derain_lib`` package.
PACKAGE_DIR = Path(__file__).resolve().parent
#: How ``--help`` describes the default results root.
RESULTS_DEFAULT = (
    "env DERAIN_RESULTS, else results/ in the project: env DERAIN_PROJECT, else the source "
    "checkout derain runs from, else (an installed package) the folder holding pyproject.toml "
    "at or above the working directory, else the user data folder"
)
#: Set by ``derain reproduce`` for its kernels: only a chapter it runs writes the committed
#: ``results/<profile>/`` and ``figures/<profile>/``.
REPRODUCE_ENV = "DERAIN_REPRODUCE"


def source_root() -> Path | None:
    """The source checkout the package is imported from, or None for an installed package."""
    top = PACKAGE_DIR.parent
    return top if (top / "pyproject.toml").is_file() else None


def user_data() -> Path:
    """derain's user data folder (:func:`platformdirs.user_data_dir`), the last fallback."""
    return Path(platformdirs.user_data_dir("derain"))


def project_root() -> Path:
    """The project: ``$DERAIN_PROJECT``, else the source checkout, else (an installed package)
    the folder holding ``pyproject.toml`` at or above the working directory, else
    :func:`user_data`."""
    if env := os.environ.get("DERAIN_PROJECT"):
        return Path(env).expanduser().resolve()
    if (source := source_root()) is not None:
        return source
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if (d / "pyproject.toml").is_file()), user_data())


def results_root(root: str | Path | None = None) -> Path:
    """``root`` (``--results``), else ``$DERAIN_RESULTS``, else ``<project>/results``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("DERAIN_RESULTS")
    return Path(env).expanduser() if env else project_root() / "results"


def figures_root() -> Path:
    """``$DERAIN_FIGURES``, else ``<project>/figures`` (resolved)."""
    env = os.environ.get("DERAIN_FIGURES")
    return (Path(env).expanduser() if env else project_root() / "figures").resolve()


def scratch_when_by_hand() -> Path | None:
    """In a notebook kernel not started by ``derain reproduce``, point unset ``$DERAIN_RESULTS``
    and ``$DERAIN_FIGURES`` at a scratch folder in the user cache (returned; None: nothing
    changed), so a chapter run by hand never rewrites committed files."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if os.environ.get(REPRODUCE_ENV) or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    root = Path(platformdirs.user_cache_dir("derain")) / "scratch"
    os.environ.setdefault("DERAIN_RESULTS", str(root / "results"))
    os.environ.setdefault("DERAIN_FIGURES", str(root / "figures"))
    return root


def notebooks_dir() -> Path:
    """The study's notebooks: ``<project>/notebooks`` (a checkout; a wheel ships none)."""
    return project_root() / "notebooks"


def package_file(*parts: str) -> Path:
    """A file shipped inside the package, through :mod:`importlib.resources` (checkout or wheel)."""
    return Path(str(resources.files(__package__).joinpath(*parts)))

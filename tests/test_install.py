"""What ``pip install derain`` gives without extras: the engine (CLI, models, metrics, data
tools, torch.hub) imports with none of the ``[study]`` extra's packages, nor TensorBoard or
submitit, present; LICENSE and CITATION.cff agree with pyproject."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

#: Import names of the extras' distributions that are not their own import name.
IMPORT_NAMES = {"ipykernel": ("ipykernel", "IPython", "jupyter_client")}

BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed (blocked by the test)")
sys.meta_path.insert(0, Blocker())
import derain_lib.cli, derain_lib.commands, derain_lib.train
sys.path.insert(0, sys.argv[2])
import hubconf
sys.argv = ["derain", "--help"]
derain_lib.cli.main()
"""


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[=<>\[]", r)[0].strip().lower() for r in requirements}


def test_the_study_extra_holds_the_notebook_stack_and_the_base_does_not() -> None:
    extras = PROJECT["optional-dependencies"]
    study = _names(extras["study"])
    assert {"jupyterlab", "papermill", "ipywidgets", "matplotlib", "pandas"} <= study
    base = _names(PROJECT["dependencies"])
    assert not {"jupyterlab", "papermill", "ipywidgets", "matplotlib", "nbconvert"} & base
    assert {"tensorboard", "submitit"} <= _names(extras["tensorboard"] + extras["cluster"])
    assert all("==" in r for r in PROJECT["dependencies"] + sum(extras.values(), []))


def test_the_engine_imports_without_the_optional_extras() -> None:
    extras = PROJECT["optional-dependencies"]
    optional = _names(extras["study"] + extras["tensorboard"] + extras["cluster"])
    optional -= _names(PROJECT["dependencies"])  # pandas: in both (the run cache uses it)
    blocked = {m for d in optional for m in IMPORT_NAMES.get(d, (d.replace("-", "_"),))}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(sorted(blocked)), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: derain" in done.stdout


def test_license_and_citation_match_pyproject() -> None:
    assert PROJECT["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["license"] == PROJECT["license"] and cff["version"] == PROJECT["version"]
    assert any("Scale-space Invariant Attention" in r["title"] for r in cff["references"])
    card = (ROOT / "MODEL_CARD.md").read_text()
    assert "never redistributes" in card and "derain reproduce --profile quick" in card


def test_make_lab_passes_allow_root_as_root_and_says_so(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "jupyter").write_text('#!/bin/sh\necho "jupyter $*"\n')
    (fake / "jupyter").chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: no setup
    done = subprocess.run(
        ["make", "--no-print-directory", "lab", f"BIN={fake}", f"STAMP={stamp}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    root = os.getuid() == 0
    assert ("jupyter lab --allow-root notebooks/" in done.stdout) == root
    assert ("running as root: passing --allow-root" in done.stdout) == root
    assert "jupyter lab" in done.stdout

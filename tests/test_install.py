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

from derain_lib.info import RELEASED

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


def test_the_model_card_names_each_released_file_with_its_sha256() -> None:
    card = (ROOT / "MODEL_CARD.md").read_text().splitlines()
    rows = [r for r in card if r.startswith("| `") and ".pth`" in r]  # the models table
    for w in RELEASED.values():
        (row,) = [r for r in rows if f"`{w.name}`" in r.split("|")[1]]
        assert f"`{w.filename}`, {w.sha256[:12]}" in row, w.name


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
    lines = done.stdout.splitlines()
    (call,) = [line for line in lines if line.startswith("jupyter ")]  # the fake's argv
    argv = call.split()[1:]
    assert argv[0] == "lab" and argv[-1] == "notebooks/" and ("--allow-root" in argv) == root
    said = [line for line in lines if line != call and "--allow-root" in line]
    assert len(said) == root  # one line says why, as root only

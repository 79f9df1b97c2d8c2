"""Committed results and figures hold no absolute path of the machine that built them
(issue 23 row 16): the README promises a clone reads the same everywhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from derain_lib import fsutil
from derain_lib.study import plan
from derain_lib.study.plan import shown

ROOT = Path(__file__).resolve().parents[1]
#: Absolute paths of a build machine: its home, the root user's home, the work folder,
#: temporary folders, user caches.
ABSOLUTE = re.compile(r"(?<![\w.~<>-])/(?:work|root|home|Users|tmp|var/folders)/|\.cache/derain")


def committed(*folders: str) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", *folders], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_committed_results_and_figures_hold_no_absolute_path() -> None:
    files = committed("results", "figures")
    assert files, "nothing committed under results/ or figures/"
    bad = []
    for f in files:
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue  # PNGs, .npz
        for m in ABSOLUTE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{f.relative_to(ROOT)}:{line}: {text[m.start() : m.start() + 60]!r}")
    assert not bad, "\n".join(bad[:20])


def test_a_folder_beside_the_project_through_a_symlink_is_shown_relative(
    tmp_path, monkeypatch
) -> None:
    """``../shared`` may be a link to a folder elsewhere: still ``../shared/...``."""
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere" / "data").mkdir(parents=True)
    (tmp_path / "shared").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("DERAIN_PROJECT", str(tmp_path / "project"))
    assert shown(tmp_path / "shared" / "data") == "../shared/data"
    assert plan.real_path("../shared/data") == (tmp_path / "elsewhere" / "data").resolve()
    assert shown(tmp_path / "elsewhere" / "data") == "../elsewhere/data"


def test_shown_paths_never_name_the_machine(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "data"))
    assert shown(tmp_path / "cache" / "weights") == "$DERAIN_CACHE/weights"
    assert shown(tmp_path / "data" / "rain100l") == "$DERAIN_DATA/rain100l"
    assert shown(fsutil.project_root() / "results" / "x") == "results/x"
    assert shown(fsutil.project_root().parent / "shared" / "data") == "../shared/data"
    # a results folder set elsewhere is named after its variable, and resolves back to itself
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "elsewhere"))
    assert shown(tmp_path / "elsewhere" / "smoke") == "$DERAIN_RESULTS/smoke"
    assert plan.real_path("$DERAIN_RESULTS/smoke") == tmp_path / "elsewhere" / "smoke"
    monkeypatch.delenv("DERAIN_RESULTS")
    reason = plan.no_data_reason(
        plan.Params("quick", str(fsutil.project_root().parent / "d")), "rain12"
    )
    assert "../d" in reason and str(fsutil.project_root().parent) not in reason


def test_notebook_parameters_as_shown_resolve_back(tmp_path, monkeypatch) -> None:
    """The pipeline passes folders to the notebooks as shown; Params reads them back."""
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "data"))
    root = fsutil.project_root()
    for folder in (
        tmp_path / "cache" / "weights",
        tmp_path / "data" / "rain100l",
        root.parent / "shared" / "data",
        root / "results",
    ):
        assert plan.real_path(shown(folder)) == folder.resolve()
        p = plan.Params("quick", shown(folder), shown(folder))
        assert p.data_root == p.weights_dir == str(folder.resolve())
    assert plan.Params("quick").data_root is None

"""Each chapter is a pair (notebooks/jupytext.toml): the .ipynb papermill runs and its
py:percent twin, whose diff a reviewer reads. They must hold the same cells."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("ipynb", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_and_its_script_hold_the_same_cells(ipynb: Path) -> None:
    script = ipynb.with_suffix(".py")
    assert script.is_file(), f"{script.name} missing: run `make sync-notebooks`"
    paired = cells(jupytext.read(script))
    assert paired == cells(nbformat.read(ipynb, as_version=4)), (
        f"{ipynb.name} and {script.name} differ: run `make sync-notebooks`"
    )


@pytest.mark.parametrize("change", ["edit", "add"])
def test_a_changed_script_is_caught(tmp_path: Path, change: str) -> None:
    """The check above can fail: one line changed in a code cell, or a cell added."""
    ipynb = CHAPTERS[0]
    text = ipynb.with_suffix(".py").read_text()
    if change == "edit":
        head, sep, rest = text.partition("\n# %%\n")  # the first code cell's marker
        text = head + sep + "x = 1\n" + rest
    else:
        text += "\n# %%\nx = 1\n"
    (tmp_path / "x.py").write_text(text)
    assert cells(jupytext.read(tmp_path / "x.py")) != cells(nbformat.read(ipynb, as_version=4))

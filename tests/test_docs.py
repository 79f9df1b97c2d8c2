"""Docs that agree with themselves: no committed text names an absolute path of the machine
it was written on, and every Markdown table row has its header's number of columns."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A build machine's folders (``~/.cache/derain`` and ``<checkout>`` are how docs say it).
MACHINE_PATH = re.compile(r"(?<![\w.~<>$-])/(?:work|root|home|Users|tmp|var/folders)/")
#: Files that name such paths on purpose: the patterns themselves.
ALLOWED = {"tests/test_docs.py", "tests/test_no_abs_paths.py"}


def _committed() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.stdout.decode().split("\0") if p and p not in ALLOWED]


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return None  # images, binary files


def test_no_committed_file_names_a_machine_path() -> None:
    bad = []
    for f in _committed():
        text = _text(f)
        for m in MACHINE_PATH.finditer(text or ""):
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{f.relative_to(ROOT)}:{line}: {text[m.start() : m.start() + 50]!r}")
    assert not bad, "\n".join(bad[:20])


def _cells(row: str) -> int:
    row = re.sub(r"`[^`]*`", "code", row)  # a | inside code is no column
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_every_markdown_table_row_has_the_headers_columns() -> None:
    bad = []
    for f in _committed():
        if f.suffix != ".md" or (text := _text(f)) is None:
            continue
        lines = text.splitlines()
        for i, line in enumerate(lines[:-1]):
            if not (line.startswith("|") and re.fullmatch(r"\|[-| :]+\|", lines[i + 1])):
                continue
            n, j = _cells(line), i + 2
            while j < len(lines) and lines[j].startswith("|"):
                if _cells(lines[j]) != n:
                    bad.append(f"{f.relative_to(ROOT)}:{j + 1}: {_cells(lines[j])} cells, not {n}")
                j += 1
    assert not bad, "\n".join(bad)

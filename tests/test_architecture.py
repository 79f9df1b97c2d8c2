"""The layering docs/ARCHITECTURE.md draws, checked on the import graph of ``derain_lib``
(every ``import`` a module runs, at its top or inside a function), and the fast start a user
sees: ``derain --help``, ``derain info`` and argument errors answered without loading torch."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "derain_lib"

#: The application layer, above the engine and the study: the ``derain`` command (its
#: parser, what each command does). Only these modules may import ``derain_lib.study``, and
#: nothing else imports them.
APP = {"cli", "commands", "entry"}

#: The study's modules in the order of its chapters (notebooks/00-08): a module may import
#: one of its own rank or an earlier one, never a later one. A new module of study/ must be
#: placed here. The first rank is what every chapter shares (the plan, the paper as data,
#: the one record, the statistics); the last runs the chapters (papermill, the report).
STUDY_CHAPTERS: tuple[tuple[str, set[str]], ...] = (
    ("shared by every chapter, and 00 data", {"__init__", "plan", "paper", "record", "stats"}),
    ("01 training", {"training"}),
    ("02-04 the tables' scores", {"scoring", "probes", "tabulate"}),
    ("05-06 figures and the attention explorer", {"figures"}),
    ("07 beyond the paper", {"beyond"}),
    ("08 claims", {"claims"}),
    ("the whole run", {"pipeline", "report"}),
)


def _name(path: Path, pkg: Path) -> str:
    """``derain_lib.study.plan`` for ``derain_lib/study/plan.py``; a package is its folder."""
    parts = path.relative_to(pkg.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    files = {_name(p, pkg): p for p in pkg.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from . import record`` imports a module; ``from .x import f`` a name of x
            targets |= {f"{source}.{a.name}" if f"{source}.{a.name}" in files else source
                        for a in node.names}  # fmt: skip
        graph[module] = {t for t in targets if t in files} - {module}
    return graph


def _short(module: str) -> str:
    """``study.plan`` for ``derain_lib.study.plan``; ``__init__`` for the package itself."""
    return module.partition(".")[2] or "__init__"


def _top(module: str) -> str:
    """The folder (``data``, ``study``) or top-level module (``runs``) a module belongs to."""
    return _short(module).split(".")[0]


def test_the_graph_reads_each_import_form(tmp_path: Path) -> None:
    """At the top or inside a function, relative or absolute, a module or a name of one."""
    root = tmp_path / "derain_lib"
    (root / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "sub/__init__", "sub/c", "sub/d"):
        (root / f"{name}.py").write_text("")
    (root / "a.py").write_text("def f():\n    from .sub import c\n")
    (root / "sub" / "c.py").write_text("from .. import b\nfrom . import d\nimport derain_lib.a\n")
    (root / "sub" / "d.py").write_text("from ..b import x\nimport os\n")
    graph = import_graph(root)
    assert graph["derain_lib.a"] == {"derain_lib.sub.c"}
    assert graph["derain_lib.sub.c"] == {"derain_lib.b", "derain_lib.sub.d", "derain_lib.a"}
    assert graph["derain_lib.sub.d"] == {"derain_lib.b"}


def test_only_the_cli_imports_the_study_and_nothing_imports_the_cli() -> None:
    """The engine (models, data, metrics, runs, training, ...) and viz never import
    ``derain_lib.study``; only the application layer does, and nothing imports it."""
    graph = import_graph()
    into_study = sorted(
        f"{_short(m)} imports {_short(t)}"
        for m, targets in graph.items()
        if _top(m) not in ("study", *APP)
        for t in targets
        if _top(t) == "study"
    )
    assert into_study == []
    into_app = sorted(
        f"{_short(m)} imports {_short(t)}"
        for m, targets in graph.items()
        if _top(m) not in APP
        for t in targets
        if _top(t) in APP
    )
    assert into_app == []


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as e:
        return e.args[1]
    return []


def test_no_import_cycle_between_modules_or_folders() -> None:
    graph = import_graph()
    assert _cycle({_short(m): {_short(t) for t in ts} for m, ts in graph.items()}) == []
    folders: dict[str, set[str]] = {}
    for m, targets in graph.items():
        folders.setdefault(_top(m), set()).update(_top(t) for t in targets if _top(t) != _top(m))
    assert _cycle(folders) == []


def test_a_cycle_is_found() -> None:
    """The check above can fail: a loop through three modules is reported."""
    assert set(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == {"a", "b", "c"}


def _chapter_rank() -> dict[str, int]:
    return {name: i for i, (_, names) in enumerate(STUDY_CHAPTERS) for name in names}


def test_no_chapter_imports_a_later_chapter() -> None:
    rank, labels = _chapter_rank(), [label for label, _ in STUDY_CHAPTERS]
    study = {m: ts for m, ts in import_graph().items() if _top(m) == "study"}

    def chapter(module: str) -> str:
        return (_short(module).split(".") + ["__init__"])[1]

    unplaced = sorted({chapter(m) for m in study} - rank.keys())
    assert unplaced == [], f"place study/{unplaced} in STUDY_CHAPTERS"
    later = sorted(
        f"{_short(m)} ({labels[rank[chapter(m)]]}) imports {_short(t)} ({labels[rank[chapter(t)]]})"
        for m, targets in study.items()
        for t in targets
        if _top(t) == "study" and rank[chapter(t)] > rank[chapter(m)]
    )
    assert later == []


def _console_script() -> str:
    """What ``derain`` runs (``module:function``), as pip installs it from pyproject.toml."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts["derain"]


#: Runs the console script's function once per argv list, as the ``derain`` command would,
#: then reports each rc, stdout and stderr and every torch module loaded meanwhile.
CHILD = """
import contextlib, io, json, sys
from importlib import import_module
module, function = sys.argv[1].split(":")
main = getattr(import_module(module), function)
runs = []
for argv in json.loads(sys.argv[2]):
    sys.argv = ["derain", *argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main()
        except SystemExit as e:
            rc = e.code
    runs.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue()})
torch = sorted(m for m in sys.modules if m.split(".")[0] == "torch")
print(json.dumps({"runs": runs, "torch": torch}))
"""


def derain_without_torch(*argvs: list[str]) -> tuple[list[dict], list[str]]:
    """``derain ARGV`` for each ARGV in one fresh process: their results, and the torch
    modules that process loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, _console_script(), json.dumps(argvs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a loaded machine can take minutes to import torch
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    return report["runs"], report["torch"]


#: The commands the CLI has always had (issue 33: every command kept).
COMMANDS = {"info", "derain", "score", "data", "fetch", "train", "evaluate", "runs",
            "reproduce", "claims", "export"}  # fmt: skip


def test_help_info_and_argument_errors_load_no_torch() -> None:
    (unknown,), _ = derain_without_torch(["no-such-command"])
    assert unknown["rc"] == 2 and unknown["out"] == ""
    assert unknown["err"].splitlines()[-1].startswith("derain: error: ")
    commands = set(re.findall(r"'([\w-]+)'", unknown["err"].splitlines()[-1])) - {"no-such-command"}
    assert commands >= COMMANDS, COMMANDS - commands
    argvs = [["--help"], ["info"], *([c, "--help"] for c in sorted(commands))]
    argvs += [["evaluate", "--weights", "no-such-weights", "--data", "x"], ["score", "a.png"]]
    runs, torch = derain_without_torch(*argvs)
    assert torch == []  # no torch module was imported by any of them
    top, info, *helps, bad_weights, bad_score = runs
    assert top["rc"] == 0 and top["out"].startswith("usage: derain")
    assert all(c in top["out"] for c in COMMANDS)
    assert info["rc"] == 0 and "sian-rain100l" in info["out"]
    for argv, run in zip(argvs[2:-2], helps, strict=True):
        assert run["rc"] == 0 and run["out"].startswith(f"usage: derain {argv[0]}"), argv
    for run in (bad_weights, bad_score):
        assert run["rc"] == 2 and run["out"] == "", run
        assert re.match(r"derain( [\w-]+)?: error: ", run["err"].splitlines()[-1]), run
    assert "--weights no-such-weights" in bad_weights["err"]
    assert len(bad_weights["err"].splitlines()) == 1


def test_the_torch_check_sees_torch(tmp_path: Path) -> None:
    """``derain_without_torch`` can fail: a command that reads the run cache loads torch."""
    runs, torch = derain_without_torch(["runs", "list", "--results", str(tmp_path)])
    assert "torch" in torch and runs[0]["rc"] in (0, 2)


@pytest.mark.parametrize("folder", ["data", "models"])
def test_data_and_models_sit_at_the_bottom(folder: str) -> None:
    """The data side and the networks import nothing above them: no engine step, no
    study, no viz, no CLI; only the shared leaves and each other's own modules."""
    allowed = {"__init__", "errors", "fsutil", "info", folder}
    graph = import_graph()
    above = sorted(
        f"{_short(m)} imports {_short(t)}"
        for m, targets in graph.items()
        if _top(m) == folder
        for t in targets
        if _top(t) not in allowed
    )
    assert above == []

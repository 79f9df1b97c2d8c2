"""The rules of docs/ARCHITECTURE.md that a program can check, read from the source."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from derain_lib import config, roots

PKG = Path(__file__).resolve().parents[1] / "derain_lib"
FOLDERS = ("data", "models", "study", "viz")


def _modules() -> dict[str, ast.Module]:
    return {
        p.relative_to(PKG).with_suffix("").as_posix(): ast.parse(p.read_text())
        for p in PKG.rglob("*.py")
    }


def _target(module: str, node: ast.ImportFrom) -> str:
    """The package path (``data/io``, ``metrics``) an import inside ``module`` names."""
    parts = module.split("/")[: -node.level] if node.level else []
    return "/".join([*parts, *(node.module or "").split(".")]).strip("/")


#: Entry points (argument parsing, the commands, run labels, the widget) and leaves everyone
#: may import. ``info`` counts as a leaf: a torch-free table module (model descriptions,
#: released weights) that ``models/`` imports; it imports only ``INFO_IMPORTS``, which
#: import nothing of the package but ``errors`` and ``roots`` (checked below; ``roots``
#: imports nothing of it), so importing it closes no loop.
ENTRY, LEAVES = (
    ("cli", "commands", "entry", "labels", "widgets"),
    ("errors", "fsutil", "__init__", "info", "roots"),
)
INFO_IMPORTS = {"__init__", "errors", "fsutil", "roots", "threads"}
BASE = {"errors", "roots"}
#: The console command sets the OpenMP variables, then imports the commands (and torch)
#: only for a command that needs them: ``derain info`` and ``--help`` load no torch.
LATE_IMPORT = "entry"


def _part(path: str) -> str:
    head = path.split("/")[0]
    if head in FOLDERS:
        return head
    return "entry" if head in ENTRY else "leaf" if head in LEAVES else "engine"


def test_argument_parsing_lives_in_cli_only() -> None:
    users = [
        m
        for m, tree in _modules().items()
        for n in ast.walk(tree)
        if isinstance(n, ast.Import) and any(a.name == "argparse" for a in n.names)
    ]
    assert users == ["cli"]


def test_no_function_level_import_of_the_package() -> None:
    inner = [
        f"{m}:{n.lineno}"
        for m, tree in _modules().items()
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.ImportFrom) and n.level > 0
    ]
    assert [i for i in inner if not i.startswith(LATE_IMPORT + ":")] == []
    assert inner, "entry.py imports the commands (and torch) inside main()"


def test_the_parser_and_info_import_no_torch() -> None:
    """``cli`` (the parser), ``entry`` (the console command) and ``info`` (what
    ``derain info`` prints) import, at their top, only these torch-free modules."""
    light = {
        *("__init__", "allocator", "info", "cli", "entry", "errors", "fsutil", "roots"),
        "threads",
    }
    for m in ("cli", "entry", "info"):
        tree = _modules()[m]
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level > 0]
        targets = {_target(m, n) or "__init__" for n in top}
        assert targets <= light, (m, targets - light)


def _package_imports(module: str) -> set[str]:
    """What ``module`` imports of the package (``__init__`` for ``from . import x``)."""
    tree = _modules()[module]
    return {
        _target(module, n) or "__init__"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.level > 0
    }


def test_info_is_a_leaf() -> None:
    """``models/`` may import info only while it stays a leaf: it imports nothing
    of the package but :data:`INFO_IMPORTS`, and those nothing but :data:`BASE`, which
    import nothing of the package."""
    assert _package_imports("info") <= INFO_IMPORTS
    for m in INFO_IMPORTS - {"errors"}:
        assert _package_imports(m) <= BASE, m
    for m in BASE:
        assert _package_imports(m) <= set(), m


def test_no_import_loop_between_folders() -> None:
    edges = {
        (_part(m), _part(_target(m, n)))
        for m, tree in _modules().items()
        if m != "__init__"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.level > 0
    }
    edges = {(a, b) for a, b in edges if a != b and "leaf" not in (a, b)}
    loops = [(a, b) for a, b in edges if (b, a) in edges]
    assert loops == []
    # and the direction the architecture names: the data side and the models import no
    # study, viz or engine code except the shared leaves (errors, fsutil, and info:
    # models/ exports its DESCRIPTIONS, the one table `derain info` prints without torch)
    for low in ("data", "models"):
        for m, tree in _modules().items():
            if not m.startswith(low + "/"):
                continue
            for n in ast.walk(tree):
                if isinstance(n, ast.ImportFrom) and n.level > 0:
                    t = _target(m, n)
                    allowed = ("errors", "fsutil", "info", "roots")
                    assert t.startswith(low + "/") or t in allowed, (m, t)


def _strings(tree: ast.Module) -> list[str]:
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _file_anchors(tree: ast.Module) -> list[int]:
    """Lines that locate something from the module's own file (``__file__``)."""
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "__file__"]


def test_one_root() -> None:
    """Only ``roots`` decides where the project, ``results/`` and ``figures/`` are: no other
    module reads their variables, looks for ``pyproject.toml`` or locates the tree from its
    own file; the old second resolver (``runs.PROJECT_ROOT``) is gone."""
    root_words = ("DERAIN_RESULTS", "DERAIN_FIGURES", "DERAIN_PROJECT", "pyproject.toml")
    others = {m: t for m, t in _modules().items() if m != "roots"}
    readers = {
        m: sorted({w for s in _strings(t) for w in root_words if w == s or f"/{w}" in s})
        for m, t in others.items()
    }
    assert {m: w for m, w in readers.items() if w} == {}
    assert {m: _file_anchors(t) for m, t in others.items() if _file_anchors(t)} == {}
    names = {
        getattr(n, "id", None) or getattr(n, "name", None) or getattr(n, "attr", None)
        for t in _modules().values()
        for n in ast.walk(t)
        if isinstance(n, ast.Name | ast.alias | ast.Attribute)
    }
    assert "PROJECT_ROOT" not in names
    defs = [
        f"{m}.{n.name}"
        for m, t in _modules().items()
        for n in t.body
        if isinstance(n, ast.FunctionDef)
        and n.name in ("project_root", "results_root", "figures_root")
    ]
    assert sorted(defs) == ["roots.figures_root", "roots.project_root", "roots.results_root"]


def test_profiles_ship_inside_the_package() -> None:
    """The profiles are package data found through importlib.resources, listed in the wheel's
    package-data, and nothing names the old ``configs/`` folder."""
    assert roots.package_file("profiles") == config.PROFILES_DIR
    assert PKG / "profiles" == config.PROFILES_DIR
    for name in config.PROFILES:
        assert (config.PROFILES_DIR / f"{name}.yaml").is_file(), name
    assert "resources" in ast.unparse(_modules()["roots"])
    pyproject = tomllib.loads((PKG.parent / "pyproject.toml").read_text())
    assert "profiles/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["derain_lib"]
    assert not (PKG.parent / "configs").exists()
    mentions = [
        p.relative_to(PKG.parent).as_posix()
        for pattern in ("derain_lib/**/*.py", "tests/*.py", "notebooks/*.ipynb", "docs/*.md")
        for p in PKG.parent.glob(pattern)
        if "configs/profiles" in p.read_text() and p.name != "test_architecture.py"
    ]
    assert mentions == []


def _string_constants(tree: ast.Module) -> list[tuple[int, str]]:
    """Every string literal of a module but its docstrings (module, class, function)."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_method_ids_and_steps_are_written_once() -> None:
    """Method ids (``"sian/neg-ssim"``) and step names (``"table3_4"``) are spelled only
    where ``tables.MethodId`` and ``study.paper.Step`` define them; everyone else names the
    members (issue 24: typed contracts, not retyped strings)."""
    from derain_lib.study.paper import TABLES, Step
    from derain_lib.tables import MethodId

    # "input" is also the plain word for the rainy view; table2/table5 are also the tables'
    # own keys (their CSVs' names): those two kinds of string are not contracts of a step
    ids = {str(m) for m in MethodId if m is not MethodId.INPUT}
    ids |= {str(s) for s in Step} - set(TABLES)
    found = [
        f"derain_lib/{name}.py:{line}: {value!r}"
        for name, tree in _modules().items()
        if name not in ("tables", "study/paper")
        for line, value in _string_constants(tree)
        if value in ids
    ]
    assert found == []


#: Names several modules define on purpose: each chapter-07 section's ``run(params, models)``
#: and ``commands.run``; the ``main`` of the console command and of the cost child process.
SHARED_NAMES = {"run", "main"}


def test_one_name_per_thing() -> None:
    """No public function or class name is defined in two modules of the package (the old
    ``metrics.score`` / ``study.scoring.score``, two ``claim_rows``, two ``Source``), and
    the module names that collided are gone (``catalogue`` beside ``data/catalog``,
    ``study/prepare`` beside ``derain data prepare``, ``attention`` beside ``viz/attention``)."""
    where: dict[str, list[str]] = {}
    for name, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(name)
    twice = {k: v for k, v in where.items() if len(v) > 1 and k not in SHARED_NAMES}
    assert twice == {}
    modules = set(_modules())
    assert not modules & {"catalogue", "study/prepare", "attention"}
    assert {"info", "data/catalog", "study/inventory", "attention_maps", "viz/attention"} <= modules

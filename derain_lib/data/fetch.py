"""``derain fetch``: the released weights and the real test sets, downloaded on first use.

Every file comes from a public repository at a fixed commit, as a raw file URL
``{base}/{owner}/{repo}/{commit}/{path}``; ``base`` is GitHub's raw-file host unless
``DERAIN_MIRROR`` names a mirror of the same trees (a local or institutional one; the tests
serve fixtures from 127.0.0.1 this way). Each file is pinned by the sha256 of the
registry it belongs to (:data:`derain_lib.weights.RELEASED`, the manifests under
``derain_lib/data/manifests``) and downloaded with ``pooch``: into a temporary file beside
its final name, hashed, and only then renamed, so an interrupted or corrupted download never
leaves a file under its final name. A re-run re-hashes the files already there and fetches
only what is missing or damaged (the download resumes file by file).

Weights land where :func:`derain_lib.weights.find_released` looks (its cache folder); a test
set lands under ``<data root>/<name>/test`` and is then verified and indexed by
:func:`derain_lib.data.catalog.prepare`, so the pipeline finds it as a prepared benchmark.
When the first request cannot connect, :func:`fetch` says so in one ``offline: ...`` line and
the study goes on with the embedded stand-ins.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DerainError

#: GitHub's raw-file host: ``{RAW_HOST}/{owner}/{repo}/{commit}/{path}`` is one file.
RAW_HOST = "https://raw.githubusercontent.com"
#: What ``derain fetch`` can get, and ``all`` of it.
TARGETS = ("weights", "rain100l", "rain100h-crop480")


class FetchError(DerainError):
    """A download that was refused (bad sha256) or broke off; names the file."""


class Offline(FetchError):
    """The first request of a fetch could not connect: no network, or the mirror is down."""


@dataclass(frozen=True)
class Tree:
    """A repository at a fixed commit: where raw files are read from."""

    owner: str
    repo: str
    commit: str

    def url(self, path: str, base: str | None = None) -> str:
        """The raw file URL of ``path`` under ``base`` (default: DERAIN_MIRROR, else GitHub)."""
        base = (base or os.environ.get("DERAIN_MIRROR") or RAW_HOST).rstrip("/")
        return f"{base}/{self.owner}/{self.repo}/{self.commit}/{path.lstrip('/')}"


@dataclass(frozen=True)
class Item:
    """One file to fetch: its path in the tree, its sha256, where it goes under ``dest``."""

    tree: Tree
    path: str
    sha256: str
    local: str


RAIN100L_TREE = Tree("Arvaesri", "PreNet", "c12ee08192112e7ddd642bb70f8f93c99994cc82")
RAIN100H_CROP_TREE = Tree("kuijiang94", "MSPFN", "26e6073b163ac4f087d6c57bf55eba7ed20751d7")
_GITHUB_RAW = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/raw/([0-9a-f]{40})/(.+)$")


def _rain100l_path(rel: str) -> str:
    """Manifest name -> path in the PReNet fork: clean images sit beside ``rainy/``."""
    return "datasets/test/Rain100L/" + (rel.split("/", 1)[1] if rel.startswith("norain/") else rel)


def _rain100h_crop_path(rel: str) -> str:
    """Manifest name (renamed ``rain-NNN``/``norain-NNN``) -> MSPFN's ``inputcrop/N.png``."""
    number = int(re.findall(r"\d+", Path(rel).stem)[-1])
    folder = "cleancrop" if rel.startswith("norain/") else "inputcrop"
    return f"model/test/test_data/R100H/{folder}/{number}.png"


#: Test set -> (its tree, manifest, manifest name -> path in the tree, benchmark it is of).
DATASETS: dict[str, tuple[Tree, str, Callable[[str], str], str]] = {
    "rain100l": (RAIN100L_TREE, "rain100l_test.sha256", _rain100l_path, "rain100l"),
    "rain100h-crop480": (
        RAIN100H_CROP_TREE,
        "rain100h_test_crop480x320_renamed.sha256",
        _rain100h_crop_path,
        "rain100h",
    ),
}


def dataset_dir(name: str) -> Path:
    """Where test set ``name`` is downloaded to (in the manifest's layout): where
    :func:`derain_lib.data.catalog.prepare` keeps downloads, under
    :func:`derain_lib.data.datasets.data_root` (the user cache folder by default)."""
    from .datasets import data_root

    return data_root() / name / "test"


def weight_items() -> list[Item]:
    """The six released weight files, from the registry of :mod:`derain_lib.weights`."""
    from ..weights import RELEASED

    items = []
    for w in RELEASED.values():
        m = _GITHUB_RAW.match(w.url)
        if m is None:
            raise DerainError(f"{w.name}: registered URL {w.url} is not a raw file at a commit")
        owner, repo, commit, path = m.groups()
        items.append(Item(Tree(owner, repo, commit), path, w.sha256, w.filename))
    return items


def dataset_items(name: str) -> list[Item]:
    """Every file of test set ``name``, from its shipped manifest."""
    from .catalog import load_manifest

    tree, manifest, to_path, _ = DATASETS[name]
    return [Item(tree, to_path(rel), sha, rel) for rel, sha in load_manifest(manifest).items()]


def fetch_items(items: list[Item], dest: Path, log: Callable[[str], None] = print) -> int:
    """Download the ``items`` missing (or damaged) under ``dest``; returns how many came.

    Raises :class:`Offline` when the first request cannot connect, :class:`FetchError` naming
    the file when a download breaks off or its sha256 differs from the registry.
    """
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    fetched = 0
    for i, it in enumerate(items):
        target = dest / it.local
        present = target.is_file()
        url = it.tree.url(it.path)
        try:
            pooch.retrieve(url, f"sha256:{it.sha256}", fname=it.local, path=dest, progressbar=False)
        except requests.exceptions.ConnectionError as e:
            if i == 0 and not fetched:
                raise Offline(f"{url} did not answer ({type(e).__name__})") from None
            raise FetchError(
                f"{target}: download from {url} broke off ({type(e).__name__}); "
                "nothing was kept under this name, run `derain fetch` again to resume"
            ) from None
        except requests.exceptions.RequestException as e:
            raise FetchError(f"{target}: download from {url} failed: {e}") from None
        except ValueError as e:  # pooch: the sha256 of the download differs from the registry
            raise FetchError(
                f"{target}: the file at {url} does not match its registered sha256 "
                f"{it.sha256[:16]}..., not saved ({str(e).splitlines()[0][:160]})"
            ) from None
        fetched += not present
        if (i + 1) % 25 == 0 or i + 1 == len(items):
            log(f"  {i + 1}/{len(items)} files verified in {dest} ({fetched} downloaded)")
    return fetched


def fetch(target: str, log: Callable[[str], None] = print) -> list[str]:
    """Fetch ``target`` (``weights``, ``rain100l``, ``rain100h-crop480`` or ``all``).

    Test sets are then verified against their manifest and indexed as their benchmark's
    prepared test set. Returns one summary line per part. Offline, prints one
    ``offline: ...; using the embedded stand-ins`` line and returns what was done so far.
    """
    from ..weights import cache_dir

    if target != "all" and target not in TARGETS:
        raise DerainError(
            f"fetch: unknown target {target!r}; choose from all, {', '.join(TARGETS)}"
        )
    done = []
    try:
        for t in TARGETS if target == "all" else (target,):
            if t == "weights":
                n = fetch_items(weight_items(), cache_dir(), log)
                done.append(f"weights: {n} downloaded, all 6 verified in {cache_dir()}")
                continue
            done.append(_fetch_dataset(t, log))
    except Offline as e:
        log(f"offline: {e}; using the embedded stand-ins")
    return done


def _fetch_dataset(name: str, log: Callable[[str], None]) -> str:
    from .catalog import prepare
    from .datasets import data_root

    dest = dataset_dir(name)
    items = dataset_items(name)
    n = fetch_items(items, dest, log)
    benchmark = DATASETS[name][3]
    index = data_root() / "index" / f"{benchmark}-test.json"
    report = prepare(name, dest, "test", index_out=index)
    return (
        f"{name}: {n} downloaded, {len(items)} files verified in {dest}; "
        f"indexed as the {benchmark} test set ({len(report.dataset)} pairs): {index}"
    )


def _cmd_fetch(args: argparse.Namespace) -> int:
    for line in fetch(args.target):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``derain fetch``: released weights and real test sets, sha256-verified, cached."""
    p = sub.add_parser(
        "fetch",
        help="download the released weights and the Rain100L / Rain100H (cropped) test sets",
        epilog="example: derain fetch all   (DERAIN_MIRROR=URL: a mirror of the raw file trees)",
    )
    p.add_argument("target", nargs="?", default="all", choices=("all", *TARGETS))
    p.set_defaults(func=_cmd_fetch)

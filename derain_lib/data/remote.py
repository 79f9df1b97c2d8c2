"""The real test sets on first use: raw files of public repositories at fixed commits.

Every file comes as a raw file URL ``{base}/{owner}/{repo}/{commit}/{path}``; ``base`` is
GitHub's raw-file host (Git LFS files: GitHub's media host, same layout) unless
``DERAIN_MIRROR`` names a mirror of the same trees: an ``http(s)://`` URL (the tests serve
fixtures from 127.0.0.1 this way), a ``file://`` URL or a local folder (``../shared/mirror``
is one). Any other value is refused with the reason (:func:`mirror_base`). Each file is pinned by
the sha256 of the manifest it belongs to (``derain_lib/data/manifests``) and downloaded by
:func:`derain_lib.data.fetch.fetch`, so an interrupted or corrupted download never leaves a
file under its final name. A re-run re-hashes the files already there and fetches only what
is missing or damaged (the download resumes file by file). A fetched test set lands under
``<data root>/<name>/test`` and is verified and indexed by
:func:`derain_lib.data.catalog.prepare`, so the pipeline finds it as a prepared benchmark.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from ..fsutil import data_root
from .catalog import load_manifest, prepare
from .fetch import FetchError, Offline, fetch

#: GitHub's raw-file host: ``{RAW_HOST}/{owner}/{repo}/{commit}/{path}`` is one file.
RAW_HOST = "https://raw.githubusercontent.com"
#: GitHub's host of Git LFS content, in the same layout.
MEDIA_HOST = "https://media.githubusercontent.com/media"
MIRROR_ENV = "DERAIN_MIRROR"


def mirror_base(value: str | None = None) -> str | None:
    """``DERAIN_MIRROR`` (or ``value``) as a base URL: ``http(s)://...`` as given, a
    ``file://`` URL or a local folder as a ``file://`` URL of the folder; None when unset.
    Anything else raises :class:`FetchError` saying what is wrong with it."""
    value = os.environ.get(MIRROR_ENV) if value is None else value
    if not value:
        return None
    scheme = urlparse(value).scheme.lower()
    if scheme in ("http", "https"):
        return value.rstrip("/")
    if scheme == "file":
        folder = Path(unquote(urlparse(value).path))
    elif "://" in value:
        raise FetchError(
            f"{MIRROR_ENV}={value}: unsupported URL scheme {scheme!r} "
            "(give an http(s):// URL, a file:// URL or a local folder)"
        )
    else:
        folder = Path(value).expanduser()
    if not folder.is_dir():
        raise FetchError(
            f"{MIRROR_ENV}={value}: no such folder {folder.resolve()} "
            "(a local mirror is a folder laid out as {owner}/{repo}/{commit}/{path})"
        )
    return folder.resolve().as_uri()


@dataclass(frozen=True)
class Tree:
    """A repository at a fixed commit: where raw files are read from (``host``: GitHub's
    raw-file host, or its media host for Git LFS files)."""

    owner: str
    repo: str
    commit: str
    host: str = RAW_HOST

    def url(self, path: str, base: str | None = None) -> str:
        """The URL of ``path`` under ``base`` (default: :func:`mirror_base`, else the tree's
        host); the path is percent-encoded (``rainy image/1.jpg`` -> ``rainy%20image/1.jpg``)."""
        base = (base or mirror_base() or self.host).rstrip("/")
        return f"{base}/{self.owner}/{self.repo}/{self.commit}/{quote(path.lstrip('/'))}"


@dataclass(frozen=True)
class Item:
    """One file to fetch: its path in the tree, its sha256, where it goes under ``dest``."""

    tree: Tree
    path: str
    sha256: str
    local: str


RAIN100L_TREE = Tree("Arvaesri", "PreNet", "c12ee08192112e7ddd642bb70f8f93c99994cc82")
RAIN100H_CROP_TREE = Tree("kuijiang94", "MSPFN", "26e6073b163ac4f087d6c57bf55eba7ed20751d7")
#: Rain1400 (DDN data) as Git LFS files: ``rainy image/N_k.jpg``, ``ground truth/N.jpg``.
RAIN1400_TREE = Tree(
    "jinnovation", "rainy-image-dataset", "ef1db51945834188d1626d73e322a9b9f3508177", MEDIA_HOST
)


def _rain100l_path(rel: str) -> str:
    """Manifest name -> path in the PReNet fork: clean images sit beside ``rainy/``."""
    return "datasets/test/Rain100L/" + (rel.split("/", 1)[1] if rel.startswith("norain/") else rel)


def _rain100h_crop_path(rel: str) -> str:
    """Manifest name (renamed ``rain-NNN``/``norain-NNN``) -> MSPFN's ``inputcrop/N.png``."""
    number = int(re.findall(r"\d+", Path(rel).stem)[-1])
    folder = "cleancrop" if rel.startswith("norain/") else "inputcrop"
    return f"model/test/test_data/R100H/{folder}/{number}.png"


def _rain1400_local(rel: str) -> str:
    """Manifest name (the tree's ``rainy image/``, ``ground truth/``) -> the catalog's local
    layout (``rainy_image/N_k.jpg``, ``ground_truth/N.jpg``)."""
    return rel.replace("rainy image/", "rainy_image/").replace("ground truth/", "ground_truth/")


#: Test set -> (its tree, manifest, manifest name -> path in the tree, benchmark it is of).
DATASETS: dict[str, tuple[Tree, str, Callable[[str], str], str]] = {
    "rain100l": (RAIN100L_TREE, "rain100l_test.sha256", _rain100l_path, "rain100l"),
    "rain100h-crop480": (
        RAIN100H_CROP_TREE,
        "rain100h_test_crop480x320_renamed.sha256",
        _rain100h_crop_path,
        "rain100h",
    ),
    "rain1400": (RAIN1400_TREE, "rain1400_test.sha256", str, "rain1400"),
}
#: Local file names where they differ from the manifest's (default: the manifest's).
LOCAL_NAMES: dict[str, Callable[[str], str]] = {"rain1400": _rain1400_local}


def dataset_dir(name: str) -> Path:
    """Where test set ``name`` is downloaded to (in the manifest's layout), under
    :func:`derain_lib.fsutil.data_root` (the user cache folder by default)."""
    return data_root() / name / "test"


def dataset_items(name: str) -> list[Item]:
    """Every file of test set ``name``, from its shipped manifest."""
    tree, manifest, to_path, _ = DATASETS[name]
    local = LOCAL_NAMES.get(name, str)
    return [
        Item(tree, to_path(rel), sha, local(rel)) for rel, sha in load_manifest(manifest).items()
    ]


def fetch_items(items: list[Item], dest: Path, log: Callable[[str], None] = print) -> int:
    """Download the ``items`` missing (or damaged) under ``dest``; returns how many came.

    Raises :class:`~derain_lib.data.fetch.Offline` when the first request cannot connect,
    :class:`~derain_lib.data.fetch.FetchError` naming the file when a later download breaks
    off or a file's sha256 differs from the registry. One progress line per 25 files.
    """
    fetched = 0
    for i, it in enumerate(items):
        target = dest / it.local
        present = target.is_file()
        url = it.tree.url(it.path)
        try:
            fetch(url, it.sha256, target)
        except Offline as e:
            if i == 0:
                raise
            raise FetchError(
                f"{target}: download from {url} broke off ({e}); nothing was kept under this "
                "name, run `derain fetch` again to resume"
            ) from None
        fetched += not present
        if (i + 1) % 25 == 0 or i + 1 == len(items):
            log(f"  {i + 1}/{len(items)} files verified in {dest} ({fetched} downloaded)")
    return fetched


def fetch_dataset(name: str, log: Callable[[str], None] = print) -> str:
    """Fetch test set ``name`` (a key of :data:`DATASETS`), verify it against its manifest
    and index it as its benchmark's prepared test set; returns one summary line."""
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

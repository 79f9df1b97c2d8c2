"""``derain fetch`` of the real test sets: the files of each set's manifest (shipped in
``derain_lib/data/manifests``) from its repository at a fixed commit, downloaded by
:func:`~derain_lib.data.fetch.fetch_items` under ``<data root>/<name>/test`` and indexed by
:func:`~derain_lib.data.catalog.prepare` as its benchmark's test set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..fsutil import data_root
from .catalog import load_manifest, prepare
from .fetch import MEDIA_HOST, Item, Tree, fetch_items


def _rain100l_path(rel: str) -> str:
    """The PReNet fork keeps the clean images beside ``rainy/``."""
    return "datasets/test/Rain100L/" + rel.removeprefix("norain/")


def _rain100h_crop_path(rel: str) -> str:
    """``rainy/rain-012.png`` -> MSPFN's ``inputcrop/12.png`` (``cleancrop/`` for norain)."""
    number = int(re.findall(r"\d+", Path(rel).stem)[-1])
    folder = "cleancrop" if rel.startswith("norain/") else "inputcrop"
    return f"model/test/test_data/R100H/{folder}/{number}.png"


#: Test set -> (its tree, manifest, manifest name -> path in the tree, benchmark it is of).
DATASETS: dict[str, tuple[Tree, str, Callable[[str], str], str]] = {
    "rain100l": (
        Tree("Arvaesri", "PreNet", "c12ee08192112e7ddd642bb70f8f93c99994cc82"),
        "rain100l_test.sha256",
        _rain100l_path,
        "rain100l",
    ),
    "rain100h-crop480": (
        Tree("kuijiang94", "MSPFN", "26e6073b163ac4f087d6c57bf55eba7ed20751d7"),
        "rain100h_test_crop480x320_renamed.sha256",
        _rain100h_crop_path,
        "rain100h",
    ),
    # DDN's Rain1400 as Git LFS files: "rainy image/N_k.jpg", "ground truth/N.jpg"
    "rain1400": (
        Tree(
            "jinnovation",
            "rainy-image-dataset",
            "ef1db51945834188d1626d73e322a9b9f3508177",
            MEDIA_HOST,
        ),
        "rain1400_test.sha256",
        str,
        "rain1400",
    ),
}


def dataset_dir(name: str) -> Path:
    """Where test set ``name`` is downloaded to, under the data root."""
    return data_root() / name / "test"


def dataset_items(name: str) -> list[Item]:
    """Every file of test set ``name``, from its shipped manifest; local names without
    spaces (Rain1400's ``rainy image/`` lands as the catalog's ``rainy_image/``)."""
    tree, manifest, to_path, _ = DATASETS[name]
    return [
        Item(tree, to_path(rel), sha, rel.replace(" ", "_"))
        for rel, sha in load_manifest(manifest).items()
    ]


def fetch_dataset(name: str, log: Callable[[str], None] = print) -> str:
    """Fetch test set ``name``, verify it against its manifest and index it as its
    benchmark's prepared test set; returns one summary line."""
    dest, items, benchmark = dataset_dir(name), dataset_items(name), DATASETS[name][3]
    n = fetch_items(items, dest, log)
    index = data_root() / "index" / f"{benchmark}-test.json"
    report = prepare(name, dest, "test", index_out=index)
    return (
        f"{name}: {n} downloaded, {len(items)} files verified in {dest}; "
        f"indexed as the {benchmark} test set ({len(report.dataset)} pairs): {index}"
    )

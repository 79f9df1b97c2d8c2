"""`derain data prepare NAME --split train --from PATH`: the layouts users downloaded the
training sets in, recognised from small synthetic trees, counted against the full size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derain_lib.data.catalog import TRAIN_LAYOUTS, prepare
from derain_lib.data.datasets import open_dataset
from derain_lib.data.io import write_image
from derain_lib.errors import DerainError

RNG = np.random.default_rng(0)


def _img(path: Path) -> None:
    write_image(path, RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8))


def prenet_l(root: Path, nums=(1, 2, 4)) -> Path:
    for n in nums:
        _img(root / f"rain-{n}.png")
        _img(root / f"norain-{n}.png")
    return root


def jorder(root: Path, nums=(1, 2, 3)) -> Path:
    for n in nums:
        _img(root / "rain" / "X2" / f"norain-{n}x2.png")
        _img(root / "norain" / f"norain-{n}.png")
    return root


def input_target(root: Path, nums=(1, 2, 3)) -> Path:
    for n in nums:
        _img(root / "input" / f"{n}.png")
        _img(root / "target" / f"{n}.png")
    return root


def promptir(root: Path, nums=(1, 2, 3)) -> Path:
    for n in nums:
        _img(root / "rainy" / f"rain-{n}.png")
        _img(root / "gt" / f"norain-{n}.png")
    return root


def rain12600(root: Path, rainy: str = "rainy_image", clean: str = "ground_truth") -> Path:
    for n in (1, 2):
        _img(root / clean / f"{n}.jpg")
        for k in range(1, 15 if n == 1 else 13):  # scene 2 lacks rain types 13 and 14
            _img(root / rainy / f"{n}_{k}.jpg")
    return root


CASES = [
    ("rain100l", prenet_l, "rain100", 3, ["rain-003", "rain-005"]),
    ("rain100h", jorder, "jorder", 3, ["rain-004", "rain-005"]),
    ("rain100l", input_target, "input-target", 3, ["rain-004", "rain-005"]),
    ("rain100l", promptir, "rain12", 3, ["rain-004", "rain-005"]),
    ("rain1400", rain12600, "rain1400", 26, ["2_13", "2_14", "3_1"]),
    ("rain1400", lambda r: rain12600(r, "rainy image", "ground truth"), "ddn", 26, ["2_13"]),
]


@pytest.mark.parametrize(("name", "make", "layout", "pairs", "first_missing"), CASES)
def test_each_training_layout_is_recognised(
    tmp_path: Path, name: str, make, layout: str, pairs: int, first_missing: list[str]
) -> None:
    src = make(tmp_path / "download")
    report = prepare(name, src, split="train", index_out=tmp_path / "index.json")
    assert report.index["layout_found"] == TRAIN_LAYOUTS[layout]
    assert len(report.dataset) == pairs
    assert report.index["partial"]  # a few pairs of a set of 200 / 1,800 / 12,600
    expected = {"rain100l": 200, "rain100h": 1800, "rain1400": 12600}[name]
    assert len(report.index["missing"]) == expected - pairs
    assert report.index["missing"][: len(first_missing)] == first_missing
    text = "\n".join(report.lines())
    assert f"layout found: {TRAIN_LAYOUTS[layout]}" in text
    assert f"verified {pairs} of {expected} pairs" in text
    assert f"missing {expected - pairs} pair(s)" in text
    assert open_dataset(report.dataset.root).pairs == report.dataset.pairs  # training reads it


def test_a_wrapper_folder_is_looked_into(tmp_path: Path) -> None:
    prenet_l(tmp_path / "dl" / "RainTrainL")
    (tmp_path / "dl" / "readme").mkdir()
    report = prepare("rain100l", tmp_path / "dl", split="train", index_out=tmp_path / "i.json")
    assert report.dataset.root == tmp_path / "dl" / "RainTrainL"
    jorder(tmp_path / "zip" / "rain_data_train_Heavy")  # the lone folder a zip unpacks to
    report = prepare("rain100h", tmp_path / "zip", split="train", index_out=tmp_path / "j.json")
    assert report.index["layout_found"] == TRAIN_LAYOUTS["jorder"]


def test_a_set_in_another_sets_layout_is_refused_naming_the_layouts(tmp_path: Path) -> None:
    src = prenet_l(tmp_path / "l")
    with pytest.raises(DerainError, match="no rain1400 training pairs recognised") as e:
        prepare("rain1400", src, split="train", index_out=tmp_path / "i.json")
    assert "rainy_image/N_k.jpg" in str(e.value) and "input/ + target/" in str(e.value)
    empty = tmp_path / "empty"
    (empty / "stuff").mkdir(parents=True)
    with pytest.raises(DerainError, match="RainTrainL/RainTrainH"):
        prepare("rain100l", empty, split="train", index_out=tmp_path / "j.json")


def test_the_paper_profile_says_which_training_sets_it_has_and_what_a_missing_one_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from derain_lib.study.plan import Params
    from derain_lib.study.training import main_plan, training_data

    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "cache"))
    p = Params("paper", data_root=str(tmp_path / "data"))
    rows = {r["benchmark"]: r for r in training_data(p)}
    assert {b: r["status"] for b, r in rows.items()} == dict.fromkeys(
        ("rain100l", "rain100h", "rain1400"), "missing"
    )
    assert "Table II" in rows["rain100l"]["needed_for"]
    assert "Rain1400" in rows["rain1400"]["needed_for"]
    src = jorder(tmp_path / "downloads" / "RainTrainL")
    prepare("rain100l", src, split="train")  # its index under $DERAIN_DATA/index
    rows = {r["benchmark"]: r for r in training_data(p)}
    assert rows["rain100l"]["status"] == "found" and rows["rain100l"]["pairs"] == 3
    assert rows["rain100l"]["partial"] and rows["rain100h"]["status"] == "missing"
    cfg = next(c for b, _, _, c in main_plan(p) if b == "rain100l")
    assert Path(cfg.data.train) == src.resolve()  # the runs train on the prepared copy

"""The study's one record, ``results/<profile>/scores.csv``: one row per (method, variant, test
set, training seed, image), from which every table, claim and figure derives (docs/evidence.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write_text
from ..tables import MethodId
from .plan import results_dir

COLUMNS = [
    *("method", "variant", "benchmark", "test_set", "evidence", "seed"),
    *("image", "scene", "psnr", "ssim", "degenerate"),
]
TEXT = ["variant", "seed", "image", "scene", "test_set"]
KEY = ["method", "variant", "test_set"]
SORT = ["benchmark", "test_set", "method", "variant", "seed", "image"]

#: A model trained here whose mean PSNR gain over the rainy input on a test set is below this
#: learned no deraining: its scores are kept, never judged (docs/evidence.md says why 1 dB).
DEGENERATE_GAIN_DB = 1.0
DEGENERATE_RULE = (
    f"mean PSNR gain over the rainy input below {DEGENERATE_GAIN_DB:g} dB: no deraining learned"
)
#: The evidence a score is (the ``evidence`` column).
RAINY, RELEASED, TRAINED = "rainy input", "released weights", "trained here"
PIPELINE_CHECK = "pipeline check"
_TRAINED_IDS = {str(m) for m in MethodId if m.trained}


def path(profile: str) -> Path:
    return results_dir(profile) / "scores.csv"


def evidence_of(method: str, stand_in: bool) -> str:
    """``pipeline check`` on stand-in data, else by the method."""
    kind = RAINY if method == MethodId.INPUT else TRAINED if method in _TRAINED_IDS else RELEASED
    return PIPELINE_CHECK if stand_in else kind


def read(profile: str) -> pd.DataFrame:
    """The record of ``profile`` (an empty frame with :data:`COLUMNS` when absent)."""
    p = path(profile)
    if not p.is_file():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(p, keep_default_na=False, dtype=dict.fromkeys(TEXT, str))
    df["degenerate"] = df.degenerate.astype(str).str.lower() == "true"
    return df[COLUMNS]


def degenerate(df: pd.DataFrame) -> pd.Series:
    """Per row: whether its (method, test set, seed) is a degenerate model trained here."""
    group = ["method", "test_set", "seed"]
    rainy = df[(df.method == MethodId.INPUT) & (df.variant == "")]
    trained = df.method.isin(_TRAINED_IDS) & (df.variant == "")
    pairs = df[trained].merge(rainy, on=["test_set", "image"], suffixes=("", "_input"))
    gain = (pairs.psnr - pairs.psnr_input).groupby([pairs[k] for k in group]).mean()
    low = (gain < DEGENERATE_GAIN_DB).rename("low")
    return df.join(low, on=group).low.fillna(False).astype(bool) & trained


def update(profile: str, rows: pd.DataFrame | list[dict]) -> Path:
    """Replace the record's rows of every (method, variant, test set) in ``rows`` by them."""
    new = pd.DataFrame(rows, columns=COLUMNS).fillna({"variant": "", "seed": ""})
    new[TEXT] = new[TEXT].astype(str)
    old = read(profile)
    replaced = pd.MultiIndex.from_frame(old[KEY]).isin(pd.MultiIndex.from_frame(new[KEY]))
    df = pd.concat([f for f in (old[~replaced], new) if len(f)] or [new], ignore_index=True)
    df["degenerate"] = degenerate(df)
    df = df.sort_values(SORT, kind="stable", ignore_index=True)
    return atomic_write_text(path(profile), df.to_csv(index=False, float_format="%.6f"))


def seed_table(df: pd.DataFrame, per_seed: bool = False) -> pd.DataFrame:
    """Per (benchmark, test set, evidence, method, variant): mean and SD over seeds of each
    seed's image mean, ``n_seeds``, ``n_images``, ``degenerate``; ``per_seed`` adds each seed's
    row (the mean's ``seed`` is ``"mean"``)."""
    keys = ["benchmark", "test_set", "evidence", "method", "variant"]
    any_bad = ("degenerate", "any")
    seeds = df.groupby([*keys, "seed"], as_index=False, sort=False).agg(
        psnr=("psnr", "mean"), ssim=("ssim", "mean"), n_images=("image", "size"), degenerate=any_bad
    )
    spread = {m + k: (m, f) for m in ("psnr", "ssim") for k, f in (("", "mean"), ("_sd", "std"))}
    means = seeds.groupby(keys, as_index=False, sort=False).agg(
        **spread, n_seeds=("seed", "size"), n_images=("n_images", "max"), degenerate=any_bad
    )
    return pd.concat([seeds, means.assign(seed="mean")], ignore_index=True) if per_seed else means

"""The study's one record: ``results/<profile>/scores.csv``, a tidy table of every score.

One row per (method, variant, test set, training seed, image), columns :data:`COLUMNS`:

- ``method``: a :class:`~derain_lib.tables.MethodId` (``input``, ``sian-released``,
  ``sian/neg-ssim`` ...); ``variant``: empty for the method's output, ``stage-k`` for the
  released SIAN's stage ``k``, ``ko-<kind>[-<where>]`` for an inference-time knock-out of its
  attention (:mod:`.probes`);
- ``benchmark``, ``test_set`` (its label), ``evidence`` (:func:`evidence_of`): ``rainy input``,
  ``released weights``, ``trained here``, or ``pipeline check`` for anything scored on the
  embedded stand-in data;
- ``seed``: the training seed (empty for released weights and the Input), ``image``,
  ``scene`` (images of one scene share it), ``psnr``, ``ssim``;
- ``degenerate``: :func:`degenerate` of the row's (method, test set, seed).

Every table, claim and figure of the study derives from it; the steps that score (02-04, the
probes) replace their own rows (:func:`update`), so the file is rewritten in one sorted,
diff-friendly order.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write_text
from ..tables import MethodId
from .plan import results_dir

COLUMNS = [
    *("method", "variant", "benchmark", "test_set", "evidence", "seed"),
    *("image", "scene", "psnr", "ssim", "degenerate"),
]
KEY = ["method", "variant", "test_set"]
SORT = ["benchmark", "test_set", "method", "variant", "seed", "image"]

#: The one degeneracy test: a model trained here whose mean PSNR gain over the rainy input,
#: on the images of a test set, is below this many dB has learned next to no deraining, and
#: its scores are kept but never judged. Why 1 dB: every trained method the paper's Tables
#: II-V report gains at least 5 dB over the input on Rain100L/H (the weakest, DDN: +5.48 /
#: +9.29 dB), so a model below 1 dB is not a weaker deraining model but one that did not
#: learn; and 1 dB is ten times the 0.1 dB a rounding of the paper's numbers hides.
DEGENERATE_GAIN_DB = 1.0
DEGENERATE_RULE = (
    f"mean PSNR gain over the rainy input below {DEGENERATE_GAIN_DB:g} dB: no deraining learned"
)


#: The evidence a score is (the record's ``evidence`` column; the claims add whether a
#: released model saw the full set).
RAINY, RELEASED, TRAINED, PIPELINE_CHECK = (
    "rainy input",
    "released weights",
    "trained here",
    "pipeline check",
)


_TRAINED_IDS = {str(m) for m in MethodId if m.trained}


def path(profile: str) -> Path:
    return results_dir(profile) / "scores.csv"


def evidence_of(method: str, stand_in: bool) -> str:
    """The evidence a score is: ``pipeline check`` on stand-in data, else by its method."""
    if stand_in:
        return PIPELINE_CHECK
    if method == MethodId.INPUT:
        return RAINY
    return TRAINED if method in _TRAINED_IDS else RELEASED


def read(profile: str) -> pd.DataFrame:
    """The record of ``profile`` (an empty frame with :data:`COLUMNS` when absent)."""
    p = path(profile)
    return parse(p.read_text()) if p.is_file() else pd.DataFrame(columns=COLUMNS)


def parse(text: str) -> pd.DataFrame:
    df = pd.read_csv(
        io.StringIO(text),
        keep_default_na=False,
        dtype={c: str for c in ("variant", "seed", "image", "scene", "test_set")},
    )
    df["degenerate"] = df.degenerate.astype(str).str.lower() == "true"
    return df[COLUMNS]


def degenerate(df: pd.DataFrame) -> pd.Series:
    """Per row: whether its (method, test set, seed) is a model trained here whose mean PSNR
    gain over the Input on the same images is below :data:`DEGENERATE_GAIN_DB`."""
    group = ["method", "test_set", "seed"]
    rainy = df[(df.method == MethodId.INPUT) & (df.variant == "")]
    trained = df.method.isin(_TRAINED_IDS) & (df.variant == "")
    pairs = df[trained].merge(rainy, on=["test_set", "image"], suffixes=("", "_input"))
    gain = (pairs.psnr - pairs.psnr_input).groupby([pairs[k] for k in group]).mean()
    low = (gain < DEGENERATE_GAIN_DB).rename("low")
    return df.join(low, on=group).low.fillna(False).astype(bool) & trained


def write(profile: str, df: pd.DataFrame) -> Path:
    """``df`` as the record of ``profile``: degeneracy recomputed, sorted, atomic."""
    df = df[COLUMNS].copy()
    df["degenerate"] = degenerate(df)
    df = df.sort_values(SORT, kind="stable", ignore_index=True)
    return atomic_write_text(path(profile), df.to_csv(index=False, float_format="%.6f"))


def update(profile: str, rows: pd.DataFrame | list[dict]) -> Path:
    """Replace the record's rows of every (method, variant, test set) in ``rows`` by
    ``rows``; the rest stays."""
    new = pd.DataFrame(rows, columns=COLUMNS).fillna({"variant": "", "seed": ""})
    new["degenerate"] = False
    for c in ("variant", "seed", "image", "scene", "test_set"):
        new[c] = new[c].astype(str)
    old = read(profile)
    replaced = pd.MultiIndex.from_frame(old[KEY]).isin(pd.MultiIndex.from_frame(new[KEY]))
    frames = [f for f in (old[~replaced], new) if len(f)]
    return write(profile, pd.concat(frames, ignore_index=True) if frames else new)


def seed_table(df: pd.DataFrame, per_seed: bool = False) -> pd.DataFrame:
    """Per (benchmark, test set, evidence, method, variant): each seed's mean over the images,
    then the mean and SD over seeds (``psnr``, ``psnr_sd``, ``ssim``, ``ssim_sd``),
    ``n_seeds``, ``n_images`` and whether any seed is degenerate: what the tables show.
    ``per_seed`` adds each seed's own row (``seed`` its seed, ``"mean"`` for the mean row)."""
    keys = ["benchmark", "test_set", "evidence", "method", "variant"]
    seeds = df.groupby([*keys, "seed"], as_index=False, sort=False).agg(
        psnr=("psnr", "mean"),
        ssim=("ssim", "mean"),
        n_images=("image", "size"),
        degenerate=("degenerate", "any"),
    )
    means = seeds.groupby(keys, as_index=False, sort=False).agg(
        psnr=("psnr", "mean"),
        psnr_sd=("psnr", "std"),
        ssim=("ssim", "mean"),
        ssim_sd=("ssim", "std"),
        n_seeds=("seed", "size"),
        n_images=("n_images", "max"),
        degenerate=("degenerate", "any"),
    )
    return pd.concat([seeds, means.assign(seed="mean")], ignore_index=True) if per_seed else means

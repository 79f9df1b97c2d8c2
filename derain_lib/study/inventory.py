"""Step 00: open (building the embedded sets on first use) and fingerprint every data set.

Writes ``results/<profile>/data.json`` and the first pair of each test set as PNGs under
``results/<profile>/samples/`` (with ``samples.json``), so the data figure is drawn from
saved files like every other figure.
"""

from __future__ import annotations

from ..data.io import read_image, write_png
from ..data.sources import open_data
from ..errors import DerainError
from ..metrics import quantize
from .paths import results_dir, write_json
from .plan import Params, config_for, datasets, no_data_reason, real_photos, test_sets


def _data_row(benchmark: str, role: str, name: str, ds, stand_in: bool) -> dict:
    return {
        "benchmark": benchmark,
        "role": role,
        "set": name,
        "n": len(ds),
        "partial": ds.partial,
        "stand_in": stand_in,
        "sha256": ds.manifest_sha256(),
        "status": "ok",
    }


def data_inventory(p: Params) -> list[dict]:
    """One row per test and training set: benchmark, role, n, partial, stand-in, data
    sha256, or why it is missing. Writes ``data.json``."""
    rows = []
    for b, sets in test_sets(p).items():
        if not sets:
            rows.append(dict(benchmark=b, role="test", set="", n=0, status=no_data_reason(p, b)))
        for t in sets:
            rows.append(_data_row(b, "test", t.label, open_data(t.spec), t.stand_in))
    for b, d in datasets(p).items():
        cfg = config_for(p, d)
        try:
            ds = open_data(cfg.data.train, cfg.data.root)
        except DerainError as e:
            missing = f"missing: {e}"
            rows.append(dict(benchmark=b, role="train", set=cfg.data.train, n=0, status=missing))
            continue
        stand_in = cfg.data.train.startswith("embedded:")
        rows.append(_data_row(b, "train", cfg.data.train, ds, stand_in))
    write_json(results_dir(p.profile) / "data.json", rows)
    return rows


def save_samples(p: Params) -> list[dict]:
    """The first pair of each test set, and the first real rainy photo if any, as PNGs under
    ``results/<profile>/samples/``; returns and writes the index ``samples.json``
    (label, rainy, clean: paths relative to ``results/<profile>/``; clean is "" for a real
    photo)."""
    out = results_dir(p.profile)
    index = []
    for sets in test_sets(p).values():
        for t in sets:
            rainy, clean = open_data(t.spec).load(0)
            entry = {"label": t.label, "rainy": f"samples/{t.id}/rainy.png",
                     "clean": f"samples/{t.id}/clean.png"}  # fmt: skip
            write_png(out / entry["rainy"], quantize(rainy))
            write_png(out / entry["clean"], quantize(clean))
            index.append(entry)
    photos = real_photos(p.data_root)
    if photos:
        rel = f"samples/real_rain/{photos[0].stem}.png"
        write_png(out / rel, quantize(read_image(photos[0])))
        label = f"real rain: {photos[0].name} (no ground truth)"
        index.append({"label": label, "rainy": rel, "clean": ""})
    write_json(out / "samples.json", index)
    return index

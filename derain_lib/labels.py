"""How run-cache folders are named on screen (``derain runs list``, the explorer's weights
list): what tells runs apart, as short strings. The run cache itself holds data only."""

from __future__ import annotations

from pathlib import Path

from .info import RELEASED
from .runs import Run


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _weights_name(spec: str) -> str:
    """A weights spec as a reader knows it: a released name, ``run <key>`` for a run's own
    ``model.pt``, else the file name."""
    p = Path(spec)
    if spec in RELEASED or p.name != "model.pt":
        return p.name
    return f"run {p.parent.name[:10]}"


def _set_name(folder: str) -> str:
    """A test folder as a reader knows it: ``rain100l`` for ``.../rain100l/test``."""
    p = Path(folder)
    return p.parent.name if p.name in ("test", "train") and p.parent.name else p.name


def run_fields(run: Run) -> dict[str, str]:
    """What tells runs apart, as display strings: ``profile``, ``data``, ``model``, ``loss``
    and ``seed`` (for an evaluation-only run: its test data and weights, no seed), and
    ``status`` (``, stale`` added when made by other code)."""
    if run.damage:
        return dict.fromkeys(("profile", "data", "model", "loss", "seed"), "?") | {
            "status": "damaged"
        }
    c = run.config
    status = run.status + (", stale" if run.stale else "")
    if c.model.weights is None:
        data, loss, seed = c.dataset, f"loss {c.train.loss}", f"seed {c.train.seed}"
    else:
        test = c.data.test if c.data.test.startswith("embedded:") else _set_name(c.data.test)
        data, loss, seed = f"test {test}", f"weights {_weights_name(c.model.weights)}", ""
    return {"profile": c.name, "data": data, "model": c.model.name, "loss": loss,
            "seed": seed, "status": status}  # fmt: skip


def run_labels(runs: list[Run], status: bool = True) -> list[str]:
    """One label per run (``derain runs list`` and the explorer's weights list): the
    :func:`run_fields` joined (``status``: with the status); where runs share those, the
    config values that differ between them (``train.max_steps=2``) are added, and where
    even those agree (same config, other data or code), the run key."""
    keep = [
        k for k in ("profile", "data", "model", "loss", "seed", "status") if status or k != "status"
    ]
    fields = [run_fields(r) for r in runs]
    base = [" · ".join(f[k] for k in keep if f[k]) for f in fields]
    out = list(base)
    for label in {b for b in base if base.count(b) > 1}:
        group = [i for i, b in enumerate(base) if b == label]
        flat = {i: {} if runs[i].damage else _flat(runs[i].config.to_dict()) for i in group}
        keys = sorted({k for i in group for k in flat[i]})
        differ = [k for k in keys if len({repr(flat[i].get(k)) for i in group}) > 1]
        for i in group:
            out[i] = " · ".join([label, *(f"{k}={flat[i].get(k)}" for k in differ)])
    return [f"{o} · {r.key}" if out.count(o) > 1 else o for o, r in zip(out, runs, strict=True)]

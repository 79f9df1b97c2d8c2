"""Steps 05-06, the computing side: the files figures are drawn from, and their index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from IPython.display import Markdown
from matplotlib.figure import Figure
from torch import nn

from ..data.io import fit_size, read_image, write_png
from ..data.sources import open_data
from ..errors import DerainError
from ..fsutil import atomic_path
from ..inference import predict
from ..metrics import quantize
from ..runs import Run, results_root
from ..tables import MethodId, not_run, provenance_text
from ..viz.attention import compute_attention, save_figure, stage_scores
from ..weights import RELEASED, find_released, load_model, missing_released
from .plan import Params, figures_dir, real_photos, results_dir, test_sets, write_json
from .scoring import all_scores, model_for
from .training import load_runs

#: The models of the real-rain figure (Fig. 10): Rain100H weights, released and trained here.
REAL_METHODS = (MethodId.PRENET_RELEASED, MethodId.SIAN_RELEASED, MethodId.SIAN)


def record_figure(profile: str, fig: Figure | None, name: str, caption: str) -> Path:
    """Save ``fig`` (None: saved already) in ``figures/<profile>/``, captioned in figures.json."""
    if fig is not None:
        save_figure(fig, figures_dir(profile) / name)
    index, rel = results_dir(profile) / "figures.json", f"figures/{profile}/{name}"
    figs = json.loads(index.read_text()) if index.is_file() else []
    write_json(index, [f for f in figs if f["path"] != rel] + [{"path": rel, "caption": caption}])
    return figures_dir(profile) / name


def show_figure(profile: str, fig: Figure | None, name: str, caption: str,
                why: str) -> Figure | Markdown:  # fmt: skip
    """``fig`` recorded (:func:`record_figure`), or ``why`` as Markdown when ``fig`` is None."""
    if fig is None:
        return Markdown(why)
    record_figure(profile, fig, name, caption)
    return fig


def export_attention(p: Params, method: str, benchmark: str) -> Path | None:
    """``method``'s attention maps and stages on ``benchmark``'s first test image (``.npz``)."""
    src = model_for(p, method, benchmark, load_runs(p.profile))
    inputs = [s for s in all_scores(p.profile) if s.method == "input" and s.benchmark == benchmark]
    inputs = sorted((s for s in inputs if s.ran), key=lambda s: s.stand_in)
    if src.path is None or not inputs:
        return None
    outputs = (results_root().resolve() / inputs[0].per_image_csv).parent / "outputs"
    model = load_model(src.path, allow_download=False, device=p.device).model
    att = compute_attention(model, read_image(sorted(outputs.glob("*.png"))[0]))
    out = results_dir(p.profile) / "attention" / f"{method.replace('/', '_')}_{benchmark}.npz"
    arrays = {"image": att.image, "provenance": np.array(provenance_text(src.kind, src.detail))}
    for k in range(att.n_stages):  # masks as their mean over channels: the panel's view
        arrays[f"outputs_{k}"], arrays[f"rain_{k}"] = att.outputs[k], att.rain[k]
        for sc, v in att.masks[k].items():
            arrays[f"masks_{k}_{sc}"] = v.mean(axis=0, keepdims=True)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return out


def profile_images(p: Params) -> list[tuple[str, Path]]:
    """(label, rainy image) of the test pairs ``p``'s profile scores on, for the explorer."""
    sets = [t for ts in test_sets(p).values() for t in ts]
    return [(f"{t.label}: {pr.name}", pr.rainy) for t in sets for pr in open_data(t.spec).pairs]


def panel_weights(p: Params, weights: str) -> tuple[str | None, str]:
    """(weights, who) for notebook 06: ``weights``, else the profile's SIAN, else not run."""
    if (w := RELEASED.get(weights)) is None:
        return weights, f"weights {Path(weights).name}"
    if find_released(weights, p.weights_dir) is not None:
        return weights, f"released {weights} weights"
    missing = missing_released(weights, p.weights_dir)
    todo = (f": fetch the weights (derain fetch weights) or train it (derain reproduce "
            f"--profile {p.profile}, or notebooks/01_train.ipynb)")  # fmt: skip
    try:
        runs = load_runs(p.profile)
    except DerainError:
        return None, not_run(f"{missing}; no run of profile {p.profile} either (runs.json){todo}")
    if (src := model_for(p, MethodId.SIAN, w.dataset, runs)).kind == "not_run":
        return None, not_run(f"{missing}; {src.detail}")
    run = Run.load(src.path.parent)
    if (c := run.config) is None or not src.path.is_file():  # a run this machine lacks
        return None, not_run(f"{missing}; the SIAN of profile {p.profile} that runs.json names "
                             f"is not in the run cache ({src.path}){todo}")  # fmt: skip
    note = f", {src.note}" if src.note else ""
    return str(src.path), (f"SIAN trained by profile {p.profile} (run {run.key[:10]}, loss "
                           f"{c.train.loss}, seed {c.train.seed}{note}) in place of the released "
                           f"{weights} weights, which were not found")  # fmt: skip


def stage_by_stage(p: Params, weights: str, images: int = 4) -> list[dict]:
    """Fig. 6 tested: PSNR/SSIM per stage of SIAN ``weights`` on ``images`` Rain100L pairs."""
    path = find_released(weights, p.weights_dir) if weights in RELEASED else Path(weights)
    sets = sorted(test_sets(p)["rain100l"], key=lambda t: t.stand_in)
    if path is None or not Path(path).is_file() or not sets:
        return []
    model = load_model(path, allow_download=False).model  # on the CPU
    ds, rows = open_data(sets[0].spec), []
    for i in sorted({round(v) for v in np.linspace(0, len(ds) - 1, min(images, len(ds)))}):
        rainy, clean = ds.load(i)
        rows += [{**r, "image": ds.pairs[i].name, "test_set": sets[0].label}
                 for r in stage_scores(compute_attention(model, rainy), clean)]  # fmt: skip
    return rows


def derain_photos(models: dict[str, nn.Module], photos: list[Path], out_dir: str | Path,
                  side: int | None = None, reuse: bool = False) -> list[Path]:  # fmt: skip
    """Each photo (shrunk to ``side``) as ``rainy/`` and derained by each model (``<model>/``)."""
    out_dir, written = Path(out_dir), []
    for photo in photos:
        img = None
        for m, model in [("rainy", None), *models.items()]:
            out = out_dir / m.replace("/", "_") / f"{photo.stem}.png"
            if not (reuse and out.is_file()):
                img = fit_size(read_image(photo), side) if img is None else img
                write_png(out, quantize(img if model is None else predict(model, img)))
            written.append(out)
    folders = {out_dir / m.replace("/", "_") for m in ("rainy", *models)}
    for old in (f for d in folders for f in d.glob("*.png") if f not in written):
        old.unlink()  # another photo's
    return written


def derain_real(p: Params) -> list[Path]:
    """The first three real photos derained by :data:`REAL_METHODS` (``real/``), Fig. 10's."""
    runs = load_runs(p.profile)
    paths = {m: model_for(p, m, "rain100h", runs).path for m in REAL_METHODS}
    models = {m: load_model(path, allow_download=False, device=p.device).model
              for m, path in paths.items() if path is not None}  # fmt: skip
    photos = real_photos(p.data_root)[:3]
    return derain_photos(models, photos, results_dir(p.profile) / "real", reuse=True)

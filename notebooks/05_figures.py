# %% [markdown]
# # 05 · Figures
#
# **What the paper shows.** Figs. 7–9: *"Visual deraining results on sample from Rain100L"* (Rain100H, Rain1400 and Rain12), SIAN beside the other methods with PSNR/SSIM; Fig. 10: *"Visual deraining results on real rainy images"*: *"for the first image, ours and JORDER_E achieve better results than PReNet, which generates large oversmoothing regions on the roof. For the second image, the result by our scheme is more clear than the other two methods."*
#
# **What this notebook computes, on which data.** Every figure of the study, regenerated from files under `results/<profile>/` alone (outputs, per-image scores, runs and tables saved by notebooks 00–04): the sample pairs, the training curves, Table III as absolute bars beside the paper's (the claims' paired differences, with their intervals, are chapter 08's forest plot), the Fig. 7–9 analogues (rainy / PReNet / SIAN / ground truth with per-image PSNR), the attention masks per stage and scale (the one step that runs a model: it saves the masks as `results/<profile>/attention/*.npz` first) and the Fig. 10 analogue on real rain (when `data_root` holds `real_rain/`). Each goes to `figures/<profile>/` with a caption in `results/<profile>/figures.json`.

# %% [markdown]
# **Parameters** (papermill overrides them; `derain reproduce --profile NAME [--data-root DIR] [--weights-dir DIR] [--set KEY=VALUE]` passes them).

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper (derain_lib/profiles/<profile>.yaml)
data_root = None  # a folder with real benchmark data (e.g. "../../shared/data"), or None
weights_dir = None  # a folder with the released .pth files, or None
overrides = []  # config overrides as key-value strings, for every run
device = "auto"  # where models run: auto (the first CUDA device if any) | cpu | cuda | cuda:N

# %%
# %matplotlib inline
import json

from IPython.display import Markdown, display

from derain_lib.allocator import tune
from derain_lib.study import figures, scoring, tabulate, training
from derain_lib.study.plan import Params, real_photos, results_dir, shown
from derain_lib.tables import MethodId, benchmark_file_id, benchmark_label
from derain_lib.viz import data as data_plots
from derain_lib.viz import results as plots

tune()  # glibc keeps freed tensors' memory for reuse (DERAIN_MALLOC_TUNING=0: off)
p = Params(profile, data_root, weights_dir, overrides, device)
print("results:", shown(results_dir(profile)))

res = results_dir(profile)
scores = scoring.all_scores(profile)

# %% [markdown]
# ## Data, training, tables

# %%
drawn = [
    ("samples.png", data_plots.sample_pairs(res), "First pair of each test set, rainy / clean."),
    (
        "training_curves.png",
        plots.training_curves(training.load_runs(profile)),
        "Training loss per step divided by the model's stages (one panel per loss kind, its "
        "own units), and the validation PSNR of every run, per training set.",
    ),
]
table3 = tabulate.read_table(profile, "table3")
stand_in = table3.test_set.fillna("") + table3.note.fillna("")
evidence = ~stand_in.str.contains("stand-in")
table3 = plots.table_bars(table3[evidence], "Table III: this run vs the paper")
drawn.append(
    (
        "table3_bars.png",
        table3,
        "Table III on the benchmarks' own test sets: absolute PSNR of this run beside the "
        "paper's (the released weights' numbers are the point here: do they reproduce the "
        "paper's?); pipeline checks (stand-in data, models trained on it) left out.",
    )
)
for name, fig, caption in drawn:
    figures.record_figure(profile, fig, name, caption)
    display(fig)

# %% [markdown]
# ## Fig. 7–9: rainy / PReNet / SIAN / ground truth, with per-image PSNR
#
# One figure per test set scored (the real benchmark and its embedded stand-in apart), every test image kept for the figures (the title says how many of the scored ones); methods that did not run are named, not drawn.

# %%
paper_fig = {"rain100l": "Fig. 7", "rain100h": "Fig. 8", "rain1400": "Fig. 9", "rain12": "Fig. 9"}
for test in plots.figure_test_sets(scores):
    fig = plots.comparison(res.parent, scores, test)
    caption = plots.comparison_caption(scores, test, paper_fig[test.benchmark])
    name = f"compare_{benchmark_file_id(test.benchmark, test.stand_in)}.png"
    figures.record_figure(profile, fig, name, caption)
    display(fig)

# %% [markdown]
# ## Attention masks per scale and stage
#
# The scale-space attention masks M_(s) of the full SIAN (rows: stages; columns: the photo, scales 1, 1/2, 1/4, then the rain layer R_k and the stage output X_k), drawn beside the photo on the sigmoid's absolute 0–1 scale, one colour scale for the whole figure (a model whose masks are flat reads flat), on the first Rain100L test image (real if present).

# %%
attention_set = plots.figure_test_sets(scores, "rain100l")[:1]  # the image export_attention reads
for method, who in [
    (MethodId.SIAN, "trained by this profile"),
    (MethodId.SIAN_RELEASED, "released Rain100L weights"),
]:
    npz = figures.export_attention(p, method, "rain100l")
    if npz is not None and attention_set:
        test = attention_set[0]
        fig = plots.attention_from_npz(npz)
        caption = (
            f"Attention masks per stage and scale, SIAN {who}, first test image of "
            f"{benchmark_label(test.benchmark, test.stand_in)} ({test.test_set}); mean over "
            "channels, drawn beside the photo on one colour scale for every panel (0 to 1, the "
            "sigmoid's range; the values each panel spans are written under it)."
        )
        stem = f"{method.replace('/', '_')}_{benchmark_file_id(test.benchmark, test.stand_in)}"
        figures.record_figure(profile, fig, f"attention_{stem}.png", caption)
        display(fig)

# %% [markdown]
# ## Fig. 10: real rain
#
# When `data_root` holds `real_rain/`, the first three photos derained with the Rain100H models (released PReNet and SIAN, and SIAN trained here), each beside a zoomed crop of the region the first model changed most.

# %%
figures.derain_real(p)
fig = plots.real_rain(res / "real")
if fig is not None:
    shown = len(list((res / "real" / "rainy").glob("*.png")))
    ran = [m for m in figures.REAL_METHODS if (res / "real" / m.replace("/", "_")).is_dir()]
    missing = [plots.METHOD_LABELS[m] for m in figures.REAL_METHODS if m not in ran]
    caption = (
        f"Fig. 10 analogue: {shown} of {len(real_photos(data_root))} real rainy photos "
        "(no ground truth) derained by the Rain100H models"
        + (f"; not run: {', '.join(missing)}." if missing else ".")
    )
    figures.record_figure(profile, fig, "real_rain.png", caption)
    display(fig)

# %% [markdown]
# ## Tables with figure captions

# %%
display(Markdown(tabulate.build_tables(profile).read_text()))

# %% [markdown]
# ## What this run found

# %%
index = json.loads((res / "figures.json").read_text()) if (res / "figures.json").is_file() else []
display(
    Markdown(
        f"{len(index)} figures drawn from `results/{profile}/` into `figures/{profile}/`:\n\n"
        + "\n".join(f"- `{f['path']}`: {f['caption']}" for f in index)
    )
)

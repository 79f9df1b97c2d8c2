# %% [markdown]
# # 00 · Data
#
# **What the paper states** (Table I, *"Benchmarking datasets used for network training as well as performance evaluation"*):
#
# | data set | pairs (train / test) | description |
# |---|---|---|
# | Rain12 | – / 12 | only for testing |
# | Rain100L | 200 / 100 | one type of rain streaks (light rain case) |
# | Rain100H | 1,800 / 100 | many types of rain streaks (heavy rain case) |
# | Rain1400 | 12,600 / 1,400 | 1,000 clean images used to synthesize 14,000 rain images |
#
# **What this notebook computes, on which data.** It opens every data set the profile and `data_root` provide, fingerprints each (sha256 of its file manifest) into `results/<profile>/data.json`, and keeps the first pair of each test set as PNGs (`results/<profile>/samples/`) for the figure below.
#
# - `smoke` and `quick` train and test on the **embedded** synthetic sets: rain synthesised on scikit-image's photos with a *light* and a *heavy* preset, standing in for Rain100L and Rain100H. Scores on them are **not comparable** with the paper's numbers; the tables say so.
# - Real benchmark folders under `data_root` are found by name (`rain100l*`, `rain100h*`, `rain1400*`, `rain12*`; training folders skipped); sets prepared with `derain data prepare` are used too. A set with gaps (e.g. the four Rain100L sample pairs) is *partial*.
# - A benchmark with no data gives "not run" rows in the tables, never a gap.

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
import pandas as pd
from IPython.display import Markdown, display

from derain_lib.allocator import tune
from derain_lib.study import plan
from derain_lib.study.plan import Params, results_dir, shown
from derain_lib.viz import data as data_plots

tune()  # glibc keeps freed tensors' memory for reuse (DERAIN_MALLOC_TUNING=0: off)
p = Params(profile, data_root, weights_dir, overrides, device)
print("results:", shown(results_dir(profile)))

# %% [markdown]
# ## Every data set, fingerprinted

# %%
data = pd.DataFrame(plan.data_inventory(p))
data

# %% [markdown]
# ## Sample pairs
#
# The first pair of each test set (rainy above, ground truth below) and, when `data_root` holds `real_rain/`, a real rainy photograph (no ground truth).

# %%
plan.save_samples(p)
data_plots.sample_pairs(results_dir(profile))

# %% [markdown]
# ## What this run found

# %%
ok = data[data.status == "ok"]
kind = ok.stand_in.map({True: "stand-in"}).fillna(ok.partial.map({True: "partial", False: "real"}))
lines = [
    f"- {r.benchmark} {r.role}: `{r.set}`, {r.n} pairs, {k}, sha256 {r.sha256[:12]}"
    for r, k in zip(ok.itertuples(), kind, strict=True)
]
lines += [
    f"- {r.benchmark} {r.role}: **none** ({r.status})"
    for r in data[data.status != "ok"].itertuples()
]
display(
    Markdown(
        f"{len(ok)} data sets opened and fingerprinted, {len(data) - len(ok)} missing "
        f"({ok.n.sum()} pairs in all); stand-in sets are pipeline checks, never evidence on the "
        "paper:\n\n" + "\n".join(lines)
    )
)

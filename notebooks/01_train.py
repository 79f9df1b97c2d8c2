# %% [markdown]
# # 01 · Train
#
# **What the paper states** (Sec. III-D): *"The image patch size of all the dataset are set as 120 × 120 and the batch size are set as 18. We extract image patches with stride 40, 80, and 100 for Rain100L, Rain100H and Rain1400, respectively. For Rain100L, we perform the data augmentation by horizontal flip. The training epoch of Rain100L, Rain100H and Rain1400 are set as 100, 100 and 50, respectively. The learning rate γ is set as 2e-4."* (ADAM, the negative SSIM loss summed over the stages, Eq. 13.) The `paper` profile follows these settings (`derain_lib/profiles/paper.yaml`); `smoke` and `quick` train for a few dozen steps on small patches so the whole study runs on a CPU.
#
# **What this notebook computes, on which data.** Every model the tables need, per training set of the profile (`light`/`heavy` for smoke and quick, `rain100l`/`rain100h`/`rain1400` for paper), through the run cache (`results/runs/<key>/`, keyed by the full config and the data's sha256): a re-run returns finished runs at once and resumes unfinished ones.
#
# | method | model | loss | tables |
# |---|---|---|---|
# | `sian/neg-ssim` | SIAN full | negative SSIM (Eq. 13) | II, III/IV, V |
# | `sian/mae`, `sian/mse` | SIAN full | L1, MSE | II |
# | `sian-baseline/neg-ssim` | one stage with ConvLSTMs (zero state), no attention | negative SSIM | V |
# | `sian-baseline+lstm/neg-ssim` | six stages, ConvLSTM, no attention | negative SSIM | V |
#
# Rain1400 (paper profile) trains only the full model.

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
from derain_lib.study import training
from derain_lib.study.plan import Params, results_dir, shown
from derain_lib.viz import results as plots

tune()  # glibc keeps freed tensors' memory for reuse (DERAIN_MALLOC_TUNING=0: off)
p = Params(profile, data_root, weights_dir, overrides, device)
print("results:", shown(results_dir(profile)))

# %% [markdown]
# ## Train, or take from the run cache

# %%
runs = pd.DataFrame(training.train_all(p))
runs[["method", "dataset", "status", "run", "train_seconds"]]

# %% [markdown]
# Each run's score on its profile's own test set:

# %%
pd.DataFrame(
    [
        {"method": r["method"], "dataset": r["dataset"], **r.get("metrics", {})}
        for r in training.load_runs(profile)
    ]
)

# %% [markdown]
# ## Training curves
#
# Loss per step (each run's own loss) and validation PSNR, from each run's `log.csv`.

# %%
plots.training_curves(training.load_runs(profile))

# %% [markdown]
# ## What this run found

# %%
ok = runs[runs.status == "ok"]
own = pd.DataFrame(
    [
        {"method": r["method"], "dataset": r["dataset"], **r.get("metrics", {})}
        for r in training.load_runs(profile)
    ]
)
lines = [
    f"- `{r.method}` on {r.dataset}: {r.psnr:.2f} dB / {r.ssim:.4f} "
    f"on its own test set ({r.n} images)"
    for r in own.dropna(subset=["psnr"]).itertuples()
]
display(
    Markdown(
        f"{len(ok)} of {len(runs)} models available; their training took "
        f"{ok.train_seconds.sum():.0f} s in all, as each run recorded it (a re-run takes finished "
        "runs from the run cache). These are the first seed's scores on the profile's own test "
        "set; chapters 02-04 use every seed. Under `smoke` and `quick` the models see a few "
        "hundred patches of stand-in data: a pipeline check, not a model of the paper's.\n\n"
        + "\n".join(lines)
    )
)

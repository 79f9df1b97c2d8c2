# %% [markdown]
# # 08 · The paper's claims, with their uncertainty
#
# **What the paper states.** Sec. III-E: *"As shown in Table II, negative SSIM loss works better than the popular MAE and MSE loss."* Sec. I: *"Our scheme achieves the best single image deraining performance so far, which is consistently superior than a wide range of state-of-the-arts over various benchmarking datasets"* (Tables III/IV: SIAN above PReNet on each benchmark). Sec. IV-C (Table V): Baseline+LSTM *"works better"* than Baseline, and Baseline+SIAN+LSTM *"further improves the PSNR and SSIM performance"*. Each claim rests on one pair of numbers per benchmark, printed without an interval.
#
# | Table | claim (better vs worse) | benchmark | paper PSNR (dB) | paper SSIM |
# |---|---|---|---|---|
# | II | Negative SSIM vs MAE | Rain100L | 38.80 vs 38.54 | 0.984 vs 0.981 |
# | II | Negative SSIM vs MSE | Rain100L | 38.80 vs 38.52 | 0.984 vs 0.981 |
# | II | Negative SSIM vs MAE | Rain100H | 30.33 vs 30.12 | 0.909 vs 0.904 |
# | II | Negative SSIM vs MSE | Rain100H | 30.33 vs 30.03 | 0.909 vs 0.902 |
# | III | SIAN vs PReNet | Rain100L | 38.80 vs 37.45 | 0.984 vs 0.979 |
# | III | SIAN vs PReNet | Rain100H | 30.33 vs 30.11 | 0.909 vs 0.905 |
# | IV | SIAN vs PReNet | Rain1400 | 32.80 vs 32.55 | 0.946 vs 0.946 |
# | IV | SIAN vs PReNet | Rain12 | 37.24 vs 36.66 | 0.967 vs 0.961 |
# | V | Baseline+LSTM vs Baseline | Rain100L | 38.68 vs 37.92 | 0.982 vs 0.980 |
# | V | Baseline+SIAN+LSTM vs Baseline+LSTM | Rain100L | 38.80 vs 38.68 | 0.984 vs 0.982 |
# | V | Baseline+LSTM vs Baseline | Rain100H | 30.20 vs 28.55 | 0.906 vs 0.893 |
# | V | Baseline+SIAN+LSTM vs Baseline+LSTM | Rain100H | 30.33 vs 30.20 | 0.909 vs 0.906 |
#
# The largest of these differences is 1.65 dB (Table V, Rain100H); most are 0.1-0.3 dB (Rain1400 SSIM: equal, no direction claimed). Fig. 6 adds a trend: *"the quality of derained image is improved gradually stage by stage"*.
#
# **What this notebook computes, on which data.** Everything is read from the study's one record, `results/<profile>/scores.csv` (per image, per training seed), so `derain claims --profile P` recomputes `claims.csv` from the repository alone. For every claim and every test set on which both of its methods were scored: the per-image differences between the two methods on the same images, their mean and a 95 % interval over training seeds and test scenes (a hierarchical bootstrap: Rain100L/H's 100 clean images are 91 distinct scenes), and **two verdicts**:
#
# - **Direction** (PSNR): in the family of rows that can carry one (the benchmark's own test data; no degenerate model; for models trained here at least 2 seeds and a tenth of the paper's training), Holm's correction over the family at 5 %: significant on the paper's side of zero → *supported*, on the other → *contradicted*, else *inconclusive*, labelled *underpowered* where the minimum detectable effect (MDE, 80 % power) exceeds the paper's difference. The MDE never overrides a significant result. Fig. 6 is one trend claim per benchmark: every step must improve (intersection-union test; its p-value is its weakest step's).
# - **Size**: the paper's difference inside our interval → *agrees*, else *larger* or *smaller than the paper's*.
#
# Rows on stand-in data or at a budget far below the paper's are **pipeline checks**: no verdict. The inference-time knock-outs of chapter 03 are listed with their n and no paper difference: the released model's sensitivity, not Table V's retrained ablation.

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
from derain_lib.config import profile_seeds
from derain_lib.study import claims, record, stats, training
from derain_lib.study.figures import record_figure
from derain_lib.study.plan import Params, results_dir, shown
from derain_lib.viz import results as plots

tune()  # glibc keeps freed tensors' memory for reuse (DERAIN_MALLOC_TUNING=0: off)
p = Params(profile, data_root, weights_dir, overrides, device)
print("results:", shown(results_dir(profile)), "| training seeds:", profile_seeds(profile))

# %% [markdown]
# ## Every trained model, once per training seed
#
# The first seed's runs are notebook 01's (from the run cache); the others train now.

# %%
seeds = pd.DataFrame(training.train_seeds(p))
seeds[["method", "benchmark", "seed", "status"]]

# %% [markdown]
# ## One claim, computed in the open
#
# The first claim with a direction verdict (else the first one measured): both methods' PSNR on the same images, one column per method, and their difference per image and seed.

# %%
rows = claims.frame(claims.claim_rows(profile))
scores = record.read(profile)
measured = rows[rows.table.isin(["II", "III", "IV", "V"]) & rows.diff_psnr.notna()]
pick = measured[measured.direction != claims.NO_VERDICT]
r = (pick if len(pick) else measured).iloc[0]
pair = scores[
    (scores.test_set == r.test_set)
    & (scores.variant == "")
    & scores.method.isin([r.better, r.worse])
]
wide = pair.pivot_table(index=["seed", "image", "scene"], columns="method", values="psnr").dropna()
wide["diff"] = wide[r.better] - wide[r.worse]
print(f"{r.claim} | {r.test_set} | evidence: {r.evidence}")
wide.head()

# %% [markdown]
# The interval over seeds and scenes, the p-value of "no difference", and the rule:

# %%
d = wide["diff"].droplevel("scene").unstack("image")  # seeds x images
scene = wide.reset_index().drop_duplicates("image").set_index("image").scene[d.columns]
iv = stats.hierarchical_interval(d.to_numpy(), list(scene))
p_value = claims.p_value(iv)
claimed = r.paper_diff_psnr
favour = int((d.mean(axis=0) > 0).sum())
display(
    Markdown(
        f"**{r.claim}** on `{r.test_set}`: n = {iv.images} images ({iv.scenes} scenes), "
        f"{iv.seeds} seed row(s); {favour} of {iv.images} images favour {r.better}. "
        f"Mean difference {iv.mean:+.2f} dB, 95 % interval [{iv.lo:+.2f}, {iv.hi:+.2f}], "
        f"p = {p_value:.2g} ("
        + ("not in the verdict family" if pd.isna(r.p_holm) else f"Holm-adjusted {r.p_holm:.2g}")
        + f"); MDE {iv.mde:.2f} dB. "
        f"Evidence: {r.evidence}. Direction: **{r.direction}** (the interval is "
        + ("above zero" if iv.lo > 0 else "below zero" if iv.hi < 0 else "across zero")
        + f"); size: the paper's {claimed:+.2f} dB is "
        + ("inside" if iv.lo <= claimed <= iv.hi else "outside")
        + f" the interval → **{r['size']}**."
    )
)

# %% [markdown]
# ## Every claim: two verdicts

# %%
claims.write_claims(profile, rows.to_dict("records"))  # claims.csv, claims.md
COLS = [
    "table",
    "claim",
    "test_set",
    "evidence",
    "n_images",
    "n_scenes",
    "n_seeds",
    "diff_psnr",
    "lo_psnr",
    "hi_psnr",
    "paper_diff_psnr",
    "mde_psnr",
    "p_holm",
    "direction",
    "size",
]
rows[COLS].round(3)

# %% [markdown]
# ## The claims as a forest plot
#
# Each row's mean paired difference (dot) and 95 % interval (bar), green where the direction is supported, red where contradicted, grey otherwise; the paper's difference as a cross. Pipeline checks and knock-outs are drawn apart, without a verdict.

# %%
fig = plots.claims_forest(rows.to_dict("records"))
record_figure(
    profile,
    fig,
    "claims_forest.png",
    "The paper's claims: our paired difference with its 95 % interval (dot, bar) and "
    "the paper's difference (cross); pipeline checks and knock-outs apart, without verdict.",
)
fig

# %% [markdown]
# ## What this run found

# %%
family = rows[rows.p_holm.notna()]
lines = [
    f"- {r.claim} ({r.test_set}): {r.diff_psnr:+.2f} dB [{r.lo_psnr:+.2f}, {r.hi_psnr:+.2f}]"
    + ("" if pd.isna(r.paper_diff_psnr) else f" vs the paper's {r.paper_diff_psnr:+.2f}")
    + f": direction **{r.direction}**, size **{r['size']}**"
    for _, r in family.iterrows()
]
checks = rows[rows.evidence == "pipeline check"]
untested = rows[rows.direction == "not run"]
display(
    Markdown(
        f"{len(family)} rows carry a direction verdict (Holm over these {len(family)}):\n\n"
        + "\n".join(lines)
        + f"\n\n{len(checks)} rows are pipeline checks (no verdict); "
        f"{len(untested)} claims were not run "
        "(no test data or weights here): "
        + "; ".join(f"{r.claim}" for r in untested.itertuples())
        + "."
    )
)

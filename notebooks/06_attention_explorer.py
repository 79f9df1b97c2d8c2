# %% [markdown]
# # 06 · Attention explorer
#
# **What the paper states** (Sec. III-B): *"we concatenate all the DoG layers in octave O_(s), which are then passed through a convolutional layer followed by a ReLU activation, and finally we use the sigmoid function to get the final attention mask M_(s)"*; and Fig. 6: *"the quality of derained image is improved gradually stage-by-stage"*.
#
# **What this notebook computes, on which data.** SIAN weighs its features at three scales (1, 1/2, 1/4) with attention masks computed from a difference-of-Gaussians scale space, in each of its six recursive stages. This notebook opens an interactive explorer on one image: pick an image and weights, then move through the **stage**, the **scale** and **what to see** (the mask averaged over channels or one channel, a DoG layer, an octave layer, the predicted rain layer R_k, the derained image X_k), drawn alone or, with **overlay on the photo**, blended over the input at the **opacity** set. SIAN runs once per image and weights; moving a control only re-renders. Coarse maps are upsampled to the input size (`nearest` by default, or `bilinear`).
#
# Run headless by papermill (`derain reproduce`), it also saves the static panel of all stages x scales to `figures/<profile>/attention_panel.png`: with the released weights named by `weights` when they are found, else with the full SIAN (neg-SSIM loss, first seed) this profile trained, and the panel's title says which; the masks are drawn beside the photo on the sigmoid's absolute 0–1 scale, one colour scale for the whole panel (blending over the photo is the explorer's `overlay` option). The findings test the paper's Fig. 6 claim: the PSNR of every stage's output on Rain100L test pairs (a real set when there is one). The images offered are the test images of `profile`, those its runs are scored on.

# %% [markdown]
# **Parameters** (papermill overrides them; `derain reproduce --profile NAME [--data-root DIR] [--weights-dir DIR] [--set KEY=VALUE]` passes them).

# %% tags=["parameters"]
profile = "quick"  # the panel goes to <figures_dir>/<profile>/attention_panel.png
data_root = None  # real benchmark data: its test images are offered too
weights = "sian-rain100l"  # a released name, a weights file, or "random-init"
weights_dir = None  # folder of the released weights (None: DERAIN_WEIGHTS_DIR, then the cache)
image = ""  # the image to open first ("": the first embedded test image)
image_folder = ""  # a folder of images to offer too, e.g. real rainy photos
figures_dir = ""  # "": env DERAIN_FIGURES, else the project's figures/
max_side = 512  # larger images are shrunk to this longer side before the forward pass
overrides = []  # passed by `derain reproduce`; not used here
device = "auto"  # where models run: auto (the first CUDA device if any) | cpu | cuda | cuda:N

# %% [markdown]
# ## The explorer
#
# Everything below the pickers is a view of the cached forward pass. Bad input (an image that cannot be read, weights of another model such as PReNet) shows a message instead of a picture.

# %%
from pathlib import Path

from IPython.display import Image, Markdown, display

from derain_lib.allocator import tune
from derain_lib.study import figures
from derain_lib.study.plan import Params, figures_root, run_fact, shown
from derain_lib.widgets import explore

tune()  # glibc keeps freed tensors' memory for reuse (DERAIN_MALLOC_TUNING=0: off)
# released weights when found, else the SIAN this profile trained (None: neither exists)
p = Params(profile, data_root, weights_dir, device=device)
panel_weights, who = figures.panel_weights(p, weights)
print(who)
explorer = explore(
    image or None,
    panel_weights or weights,
    images=figures.profile_images(p),  # the test images the profile's runs are scored on
    image_folder=image_folder or None,
    weights_dir=p.weights_dir,
    max_side=max_side,
    device=device,
)

# %% [markdown]
# ## Static panel
#
# All stages (rows) x scales (columns) of the mean attention mask over the input, with each stage's rain layer and output. The same function (`derain_lib.viz.attention_panel`) makes the attention figure of `05_figures`.

# %%
fig_dir = Path(figures_dir) if figures_dir else figures_root()
title = f"SIAN attention: mean mask over channels\n{who}"
panel = explorer.save_panel(fig_dir / profile / "attention_panel.png", title=title)
if panel:
    figures.record_figure(  # the panel is saved already: its caption
        profile,
        None,
        "attention_panel.png",
        f"SIAN attention, mean mask over channels per stage (rows) and scale, beside the "
        f"photo on one colour scale (the sigmoid's 0 to 1, in the colorbar), with each "
        f"stage's rain layer R_k and output X_k; {who}.",
    )
why = who if panel_weights is None else f"not run: {explorer.message}"
print(f"saved {shown(panel)}" if panel else why)
Image(filename=panel) if panel else None

# %% [markdown]
# ## What this run found
#
# Fig. 6's claim, on the image pairs the explorer offers: the PSNR of every stage's output (chapter 08 judges it on the full test sets).

# %%
import pandas as pd

run_fact("last_render_ms", round(explorer.last_render_seconds * 1000, 1))
stages = pd.DataFrame(figures.stage_by_stage(p, panel_weights or weights))
if explorer.attention is None:
    opened = f"The explorer did not open a model: {explorer.message}"
else:
    h, w = explorer.attention.image.shape[:2]
    opened = (
        f"The explorer opened `{who}` on a {w}x{h} image (one forward pass per image and weights)."
    )
if stages.empty:
    display(
        Markdown(
            opened + " The stage-by-stage check did not run (no SIAN weights or no Rain100L pairs)."
        )
    )
else:
    mean = stages.groupby("stage").psnr.mean()
    rises = bool((mean.diff().dropna() > 0).all())
    display(
        Markdown(
            f"{opened} Stage by stage on {stages.image.nunique()} {stages.test_set.iloc[0]} "
            "pairs: mean PSNR "
            + ", ".join(f"{k}: {v:.2f}" for k, v in mean.items())
            + f" dB; {'it rises at every stage' if rises else 'it does not rise at every stage'}, "
            f"{mean.iloc[-1] - mean.iloc[0]:+.2f} dB from stage 1 to {mean.index[-1]}."
        )
    )

"""Beyond the paper: what the released models do under more rain, where attention looks,
how they generalise, what they cost, and why published numbers disagree (chapter 07).

One module per section, each with ``run(params, models) -> rows`` that the chapter calls
in one line and saves under ``results/<profile>/beyond/``; :mod:`derain_lib.viz.beyond`
draws from the saved rows and the notebook states their numbers. Real images are picked as
distinct scenes (:func:`.common.scene_keys`) and intervals are over scenes:

* :mod:`.density`: the synthesiser's rain at six levels (the two "-like" ones calibrated
  against the real benchmarks' Input PSNR) on real clean test scenes, per image.
* :mod:`.attention_auc`: ROC-AUC of every channel of every stage's and scale's attention
  mask as a detector of rain pixels, at the mask's resolution, beside an edge control.
* :mod:`.generalisation`: every model on every test set, gain over the input per image.
* :mod:`.cost`: parameters, GFLOP per megapixel, CPU seconds and peak memory, each model
  measured in a fresh process (``python -m derain_lib.study.beyond.cost``).
* :mod:`.protocols`: whole-image outputs under the protocols in use
  (:data:`derain_lib.metrics.PROTOCOLS`).

:mod:`.common` holds what they share (sizes, the released models, the test sets, scenes,
time).
"""

from . import attention_auc, cost, density, generalisation, protocols
from .common import (
    SIZES,
    BeyondSize,
    beyond_size,
    chapter_models,
    chapter_sets,
    clock,
    released_models,
    since,
)

__all__ = [
    "SIZES",
    "BeyondSize",
    "attention_auc",
    "beyond_size",
    "chapter_models",
    "chapter_sets",
    "clock",
    "cost",
    "density",
    "generalisation",
    "protocols",
    "released_models",
    "since",
]

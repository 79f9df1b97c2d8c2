"""Beyond the paper (chapter 07): released models under more rain (:mod:`.density`), attention
masks as rain detectors (:mod:`.attention_auc`), every model on every test set
(:mod:`.generalisation`), CPU cost (:mod:`.cost`), scoring protocols (:mod:`.protocols`).
Each section's ``run(params, models)`` returns the rows saved under ``results/<profile>/beyond/``;
real images are picked as distinct scenes, and intervals are over scenes."""

from . import attention_auc, common, cost, density, generalisation, protocols
from .common import SIZES, beyond_size, chapter_models, chapter_sets, clock, since

__all__ = ["SIZES", "attention_auc", "beyond_size", "chapter_models", "chapter_sets", "clock"]
__all__ += ["common", "cost", "density", "generalisation", "protocols", "since"]

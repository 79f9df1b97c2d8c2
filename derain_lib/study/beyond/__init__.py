"""Beyond the paper (chapter 07): the released models under more rain (:mod:`.density`),
attention masks as rain detectors (:mod:`.attention_auc`), every model on every test set
(:mod:`.generalisation`), CPU cost (:mod:`.cost`) and the scoring protocols in use
(:mod:`.protocols`). Each section's ``run(params, models)`` returns the rows the chapter
saves under ``results/<profile>/beyond/``; :mod:`.common` holds what they share. Real
images are picked as distinct scenes and intervals are over scenes.
"""

from . import attention_auc, cost, density, generalisation, protocols
from .common import SIZES, BeyondSize, beyond_size, chapter_models, chapter_sets, clock, since

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
    "since",
]

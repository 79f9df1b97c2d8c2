"""Beyond the paper (chapter 07): each section's ``run(params, models)`` returns the rows saved
under ``results/<profile>/beyond/``; real images are distinct scenes, intervals over scenes."""

from . import attention_auc, common, cost, density, generalisation, protocols
from .common import SIZES, beyond_size, chapter_models, chapter_sets, clock, since

__all__ = ["SIZES", "attention_auc", "beyond_size", "chapter_models", "chapter_sets", "clock"]
__all__ += ["common", "cost", "density", "generalisation", "protocols", "since"]

"""Every figure of the study: pure functions from saved results (files or arrays) to a
matplotlib Figure (:mod:`.attention`, :mod:`.data`, :mod:`.results`, :mod:`.seeds`,
:mod:`.beyond`). Nothing here trains or scores."""

from .attention import Attention, attention_panel, png_bytes, render_view, save_figure

__all__ = ["Attention", "attention_panel", "png_bytes", "render_view", "save_figure"]

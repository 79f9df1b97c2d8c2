"""Every figure of the study: pure functions from saved results (files or arrays) to a
matplotlib Figure. Nothing here trains or scores."""

from .attention import Attention, attention_panel, png_bytes, render_view, save_figure

__all__ = ["Attention", "attention_panel", "png_bytes", "render_view", "save_figure"]

"""Every figure of the study: pure functions from saved results (files or arrays) to a
matplotlib Figure. :mod:`.attention`: SIAN's attention views and panels; :mod:`.data`: sample
pairs; :mod:`.results`: training curves, tables as bars, Fig. 7-10 analogues, the claims'
forest plot; :mod:`.seeds`, :mod:`.beyond`. Nothing here trains or scores."""

from ..attention_maps import Attention
from .attention import (
    MAP_WHATS,
    UPSAMPLE_MODES,
    WHATS,
    attention_panel,
    colorize,
    panel_range,
    png_bytes,
    render_view,
    save_figure,
    scale_label,
    upsample,
    value_range,
    view_map,
    view_rgb,
)

__all__ = [
    "MAP_WHATS",
    "UPSAMPLE_MODES",
    "WHATS",
    "Attention",
    "attention_panel",
    "colorize",
    "panel_range",
    "png_bytes",
    "render_view",
    "save_figure",
    "scale_label",
    "upsample",
    "value_range",
    "view_map",
    "view_rgb",
]

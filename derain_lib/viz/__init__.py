"""Every figure of the study: pure functions from saved results (files or arrays) to a
matplotlib :class:`~matplotlib.figure.Figure`.

- :mod:`.attention`: SIAN's scale-space attention (views, panels) for notebooks 05/06 and
  the explorer widget.
- :mod:`.data`: sample pairs of the test sets, synthetic vs real rain.
- :mod:`.results`: what notebooks 01-05 show: training curves, the tables as bars next to
  the paper's values, per-image scatter, Fig. 7-10 analogues; 08's forest plot of the claims.

Nothing here trains or scores; the study (:mod:`derain_lib.study`) writes the files these
functions read.
"""

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

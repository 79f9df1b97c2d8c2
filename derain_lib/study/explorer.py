"""Chapter 06's attention explorer: the engine's widget opened on a profile's test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.sources import open_data
from ..widgets import AttentionExplorer
from ..widgets import explore as open_explorer
from .plan import Params, real_path, test_sets


def profile_images(profile: str, data_root: str | Path | None = None) -> list[tuple[str, Path]]:
    """(label, rainy image) of the test pairs ``profile`` scores on, labelled as the tables."""
    sets = test_sets(Params(profile, str(data_root) if data_root else None)).values()
    return [
        (f"{t.label}: {p.name}", p.rainy)
        for ts in sets
        for t in ts
        for p in open_data(t.spec).pairs
    ]


def explore(
    image: str | Path | None = None,
    weights: str | Path = "sian-rain100l",
    *,
    profile: str | None = "quick",
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    **kwargs: Any,
) -> AttentionExplorer:
    """Open the explorer offering ``profile``'s test images; ``weights_dir`` as notebooks
    write folders (``$DERAIN_CACHE/...``, relative to the project)."""
    images = profile_images(profile, data_root) if profile else []
    folder = real_path(weights_dir) if weights_dir else None
    return open_explorer(image, weights, images=images, weights_dir=folder, **kwargs)

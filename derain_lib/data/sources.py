"""A data set from the spec a config names: ``embedded:<preset>:<split>[:<size>]`` or a folder."""

from __future__ import annotations

from pathlib import Path

from ..errors import DerainError
from .datasets import PairedDataset, open_dataset
from .embedded import embedded_dataset


def open_data(spec: str, root: str | Path = ".") -> PairedDataset:
    """The data set a config names (a relative folder: under ``root``)."""
    if spec.startswith("embedded:"):
        parts = spec.split(":")[1:]
        if len(parts) not in (2, 3):
            raise DerainError(
                f"data {spec!r}: expected embedded:<light|heavy>:<train|test>[:<quick|smoke>]"
            )
        return embedded_dataset(*parts)
    return open_dataset(Path(root).expanduser() / Path(spec).expanduser())

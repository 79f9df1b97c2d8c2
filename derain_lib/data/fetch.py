"""File digests and the errors of downloads (the downloader is :mod:`.remote`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import DerainError


class FetchError(DerainError):
    """A download failed (offline, gone) or its bytes differ from the expected sha256."""


class Offline(FetchError):
    """A request could not connect: no network, or the mirror is down."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

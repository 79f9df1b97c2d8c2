"""File digests and verified downloads: the one place that hashes files or fetches them.

:func:`sha256_file` is ``hashlib.file_digest``; :func:`fetch` downloads one file with
`pooch <https://www.fatiando.org/pooch>`_ (the library scikit-image uses for its data) and
moves it into place only when its sha256 matches, so a partial or tampered download never
lands under its final name. Used by the released weights, the data catalog's mirrors and
``derain fetch`` (:mod:`derain_lib.data.remote`). A request that cannot connect raises
:class:`Offline`, so that a caller can go on without the network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pooch
import requests

from ..errors import DerainError

pooch.get_logger().setLevel("WARNING")  # no "Downloading ..." lines on stderr


class FetchError(DerainError):
    """A download failed (offline, gone) or its bytes differ from the expected sha256."""


class Offline(FetchError):
    """A request could not connect: no network, or the mirror is down."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(url: str, sha256: str, dest: str | Path) -> Path:
    """Download ``url`` to ``dest`` (a file path), verified against ``sha256``.

    An existing ``dest`` with the right digest is kept as it is. Raises :class:`Offline` when
    the request cannot connect, :class:`FetchError` naming ``dest`` and the URL when the
    download breaks off or its bytes have another sha256 (nothing is saved then).
    """
    dest = Path(dest)
    try:
        got = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=dest.name, path=dest.parent)
    except ValueError as e:  # pooch: hash mismatch (the download is deleted) or bad URL
        raise FetchError(
            f"{dest}: the file at {url} does not match its registered sha256 {sha256[:16]}..., "
            f"not saved ({str(e).splitlines()[0][:160]})"
        ) from None
    except requests.ConnectionError as e:
        raise Offline(f"{url} did not answer ({type(e).__name__})") from None
    except (requests.RequestException, OSError) as e:
        raise FetchError(f"{url}: could not be downloaded ({e})") from None
    return Path(got)

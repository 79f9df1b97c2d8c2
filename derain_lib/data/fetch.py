"""File digests and verified downloads: the one place that hashes files or fetches them.

:func:`sha256_file` is ``hashlib.file_digest``; :func:`fetch` downloads one file with
`pooch <https://www.fatiando.org/pooch>`_ (the library scikit-image uses for its data) and
moves it into place only when its sha256 matches, so a partial or tampered download never
lands under its final name. Used by the released weights, the data catalog's mirrors and
``derain fetch`` (:mod:`derain_lib.data.remote`). A request that cannot connect raises
:class:`Offline`, so that a caller can go on without the network. A ``file://`` URL (a local
mirror) is copied, verified the same way; any other scheme is refused, named.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pooch
import requests

from ..errors import DerainError
from ..fsutil import atomic_path

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
    scheme = urlparse(url).scheme.lower()
    if scheme == "file":
        return _copy_local(Path(unquote(urlparse(url).path)), sha256, dest)
    if scheme not in ("http", "https"):
        raise FetchError(f"{url}: unsupported URL scheme {scheme!r} (http, https or file)")
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


def _copy_local(src: Path, sha256: str, dest: Path) -> Path:
    """A file of a local mirror copied to ``dest`` if its sha256 matches (``dest`` kept when
    it already has the right digest); never a partial file under ``dest``."""
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    if not src.is_file():
        raise FetchError(f"{src}: not in the local mirror (no such file)")
    got = sha256_file(src)
    if got != sha256:
        raise FetchError(
            f"{src}: sha256 {got[:16]}... differs from the registered {sha256[:16]}..., "
            f"not copied to {dest}"
        )
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest

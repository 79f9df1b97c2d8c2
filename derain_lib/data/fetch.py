"""Verified downloads with pooch: files of public repositories at fixed commits, each pinned
by its sha256, from GitHub or the ``DERAIN_MIRROR`` mirror (a URL or a local folder)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote, urlparse

import pooch
import requests

from ..errors import DerainError

pooch.get_logger().setLevel("WARNING")  # no "Downloading ..." lines on stderr

RAW_HOST = "https://raw.githubusercontent.com"
MIRROR_ENV = "DERAIN_MIRROR"


class FetchError(DerainError):
    """A download failed (offline, gone) or its bytes differ from the expected sha256."""


class Offline(FetchError):
    """A request could not connect: no network, or the mirror is down."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return pooch.file_hash(str(path), alg="sha256")


def mirror_base() -> str | None:
    """``DERAIN_MIRROR`` as a base URL (a folder as its ``file://`` URL), None when unset."""
    if not (value := os.environ.get(MIRROR_ENV)):
        return None
    url, scheme = urlparse(value), urlparse(value).scheme.lower()
    if scheme in ("http", "https"):
        return value.rstrip("/")
    if scheme != "file" and "://" in value:
        why = "give an http(s):// URL, a file:// URL or a local folder"
        raise FetchError(f"{MIRROR_ENV}={value}: unsupported URL scheme {scheme!r} ({why})")
    folder = Path(unquote(url.path) if scheme == "file" else value).expanduser()
    if not folder.is_dir():
        why = "a local mirror is a folder laid out as {owner}/{repo}/{commit}/{path}"
        raise FetchError(f"{MIRROR_ENV}={value}: no such folder {folder.resolve()} ({why})")
    return folder.resolve().as_uri()


class Tree(NamedTuple):
    """A repository at a fixed commit, read from ``host`` (raw-file or LFS media host)."""

    owner: str
    repo: str
    commit: str
    host: str = RAW_HOST

    def url(self, path: str, base: str | None = None) -> str:
        """The URL of ``path`` under ``base`` (default: the mirror, else the tree's host)."""
        base = (base or mirror_base() or self.host).rstrip("/")
        return f"{base}/{self.owner}/{self.repo}/{self.commit}/{quote(path.lstrip('/'))}"


class Item(NamedTuple):
    """One file to fetch: its path in the tree, its sha256, where it goes under ``dest``."""

    tree: Tree
    path: str
    sha256: str
    local: str


def _copy_local(url: str, output_file: str, _pooch: object) -> None:
    """pooch's downloader for a ``file://`` URL (a local mirror): a copy."""
    src = Path(unquote(urlparse(url).path))
    if not src.is_file():
        raise FetchError(f"{src}: not in the local mirror (no such file)")
    shutil.copyfile(src, output_file)


def fetch_items(items: list[Item], dest: Path, log: Callable[[str], None] = print) -> int:
    """Download the ``items`` missing or damaged under ``dest``; returns how many came."""
    base = mirror_base()
    urls = {it.local: it.tree.url(it.path, base) for it in items}
    registry = {it.local: f"sha256:{it.sha256}" for it in items}
    retries = 0 if base and base.startswith("file:") else 2  # a network can fail for a moment
    files = pooch.create(dest, "", registry=registry, urls=urls, retry_if_failed=retries)
    fetched = 0
    for i, it in enumerate(items):
        target, url = Path(dest) / it.local, urls[it.local]
        present = target.is_file()
        try:
            files.fetch(it.local, downloader=_copy_local if url.startswith("file:") else None)
        except ValueError:  # pooch: the bytes have another sha256 (nothing was kept)
            raise FetchError(
                f"{target}: the file at {url} does not match its registered sha256 "
                f"{it.sha256[:16]}..., not saved"
            ) from None
        except requests.ConnectionError as e:
            if i == 0:
                raise Offline(f"{url} did not answer ({type(e).__name__})") from None
            raise FetchError(
                f"{target}: download from {url} broke off; nothing was kept under this name, "
                "run `derain fetch` again to resume"
            ) from None
        except (requests.RequestException, OSError) as e:
            raise FetchError(f"{target}: {url} could not be downloaded ({e})") from None
        fetched += not present
        if (i + 1) % 25 == 0 or i + 1 == len(items):
            log(f"  {i + 1}/{len(items)} files verified in {dest} ({fetched} downloaded)")
    return fetched

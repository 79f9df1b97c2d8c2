"""Files on disk: atomic writes, exclusive run-folder locks, project and cache folders.

Every file the package writes (PNGs, JSON, CSV, YAML, checkpoints, indexes, tables) goes
through :func:`atomic_path`: it is written to a hidden temporary file in the same folder,
fsynced and renamed over its final name, so a process killed at any moment leaves either
the previous complete file or the new complete one, never a truncated file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import DerainError
from .roots import project_root  # noqa: F401  (re-exported: the one resolver is roots)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto it.

    The parent folder is created. If the body raises, the temporary file is removed and
    ``path`` is left as it was. An unwritable folder is a one-line :class:`DerainError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DerainError(f"{path.parent}: cannot create the folder ({e.strerror})") from None
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # suffix kept: format
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        raise DerainError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode())


LOCK_NAME = ".lock"


@contextlib.contextmanager
def locked(folder: str | Path, wait: bool = False, what: str = "run") -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``folder/.lock`` for the body.

    Another process holding it is a :class:`DerainError` naming its pid, or (``wait``) is
    waited for. The lock is released when the body ends or the process dies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not wait:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise DerainError(
                        f"{folder}: this {what} is in use by process {holder} "
                        "(wait for it, or pass --wait)"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def user_cache() -> Path:
    """derain's cache folder: ``$DERAIN_CACHE``, else ``platformdirs.user_cache_dir("derain")``."""
    env = os.environ.get("DERAIN_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("derain"))


def relative_within(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` (POSIX) when it lies inside, else absolute (both
    resolved): how records and printed output name a path independently of the checkout."""
    p, r = Path(path).resolve(), Path(root).resolve()
    return p.relative_to(r).as_posix() if p.is_relative_to(r) else str(p)


def data_root() -> Path:
    """Where derain keeps data it makes (indexes, the embedded set, downloads).

    ``$DERAIN_DATA`` if set, else ``<user cache>/data`` (:func:`user_cache`); never inside
    the installed package."""
    env = os.environ.get("DERAIN_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache() / "data"

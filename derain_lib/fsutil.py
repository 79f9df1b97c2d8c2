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
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import DerainError
from .roots import project_root  # noqa: F401  (re-exported: the one resolver is roots)

#: The image file names derain reads from folders and writes (``data.io`` re-exports it;
#: here so that the torch- and numpy-free CLI checks can name them).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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


def holder() -> str:
    """This process as a lock names it: ``PID (COMMAND, since HH:MM:SS)``."""
    argv = list(sys.argv) or [""]
    first = Path(argv[0])
    if argv[0] in ("", "-c", "-m"):
        argv.insert(0, Path(sys.executable).name)
    elif first.name == "__main__.py":  # python -m PACKAGE
        argv[0:1] = [Path(sys.executable).name, "-m", first.parent.name]
    else:
        argv[0] = first.name
    command = " ".join(argv).replace("\n", " ")
    command = command if len(command) <= 120 else command[:117] + "..."
    return f"{os.getpid()} ({command}, since {time.strftime('%H:%M:%S')})"


@contextlib.contextmanager
def locked(folder: str | Path, wait: bool = False, what: str = "run") -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``folder/.lock`` for the body.

    Another process holding it is a :class:`DerainError` naming it (:func:`holder`: pid,
    command, start time), or (``wait``) is waited for. The lock is released when the body
    ends or the process dies."""
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
                    who = os.pread(fd, 256, 0).decode(errors="replace").strip() or "unknown"
                    raise DerainError(
                        f"{folder}: this {what} is in use by process {who} "
                        "(wait for it, or pass --wait)"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder().encode(), 0)
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


def shown_path(path: str | Path, root: str | Path | None = None) -> str:
    """``path`` as printed output and committed records name it, never with a folder of
    this machine (issue 23 row 16): relative to ``root`` (default :func:`project_root`)
    when inside it or a sibling of it (``../shared/data``), ``$DERAIN_DATA/...`` inside
    :func:`data_root`, ``$DERAIN_CACHE/...`` inside :func:`user_cache` (named after the
    variables that set them; angle brackets would vanish in Markdown), ``~/...`` inside
    the home folder, else as given."""
    p = Path(path).expanduser().resolve()
    r = Path(root or project_root()).resolve()
    if p.is_relative_to(r):
        return p.relative_to(r).as_posix() or "."
    for name, base in (("$DERAIN_DATA", data_root()), ("$DERAIN_CACHE", user_cache())):
        base = base.resolve()
        if p.is_relative_to(base):
            rest = p.relative_to(base).as_posix()
            return name if rest == "." else f"{name}/{rest}"
    if p.is_relative_to(r.parent) and r.parent != Path(r.anchor):
        return "../" + p.relative_to(r.parent).as_posix()
    home = Path.home().resolve()
    if p.is_relative_to(home) and home != Path(home.anchor):
        return "~/" + p.relative_to(home).as_posix()
    return str(path)


def path_problem(value: str, want: str = "file or folder") -> str | None:
    """Why ``value`` is no file or folder to read, in words that name what it is instead
    (a symlink loop, a broken link, a device, a FIFO), or None."""
    p = Path(value)
    try:
        mode = p.stat().st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"{value}: a symlink loop, not a {want}"
        if p.is_symlink():
            return f"{value}: a broken symlink (to {os.readlink(p)}), not a {want}"
        return f"{value}: no such {want}"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket"}  # fmt: skip
    kind = next((k for test, k in kinds.items() if test(mode)), "a special file")
    return f"{value}: {kind}, not a {want}"


def special_entries(folder: str | Path) -> list[str]:
    """What :func:`path_problem` says of each entry of ``folder`` named like an image that is
    no file: symlink loops, broken links, FIFOs, devices (which image listings skip)."""
    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_file() and not p.is_dir():
            out.append(path_problem(str(p), "file") or f"{p}: not a file")
    return out

"""Files on disk: atomic writes (:func:`atomic_path`, which every file the package writes goes
through), exclusive folder locks (filelock), cache folders, paths as shown."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
from filelock import FileLock, Timeout

from .errors import DerainError
from .roots import figures_root, project_root, results_root

#: The image file names derain reads and writes (here for the torch-free CLI checks).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; on success it is fsynced and renamed onto
    it, so a killed process leaves the old file or the new one, never a truncated one. An
    unwritable folder is a one-line :class:`DerainError`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # suffix kept: format
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise DerainError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _sign(fd: int) -> None:
    """Write this process into the lock file: ``PID (COMMAND, since HH:MM:SS)``."""
    argv = [Path(a).name if i < 2 else a for i, a in enumerate(sys.orig_argv)]
    command = " ".join(argv).replace("\n", " ")[:120]
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} ({command}, since {time.strftime('%H:%M:%S')})".encode(), 0)


@contextlib.contextmanager
def locked(folder: str | Path, wait: bool = False, what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.lock`` (:class:`filelock.FileLock`) for the body;
    another holder is a :class:`DerainError` naming it, or (``wait``) is waited for."""
    path = Path(folder) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, preserve_lock_file=True, on_acquired=_sign, poll_interval=0.5)
    try:
        lock.acquire(blocking=wait)
    except Timeout:
        who = path.read_text(errors="replace").strip() or "unknown"
        raise DerainError(
            f"{folder}: this {what} is in use by process {who} (wait for it, or pass --wait)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def user_cache() -> Path:
    """derain's cache folder: ``$DERAIN_CACHE``, else ``platformdirs.user_cache_dir("derain")``."""
    env = os.environ.get("DERAIN_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("derain"))


def data_root() -> Path:
    """Where derain keeps data it makes (indexes, the embedded set, downloads): ``$DERAIN_DATA``,
    else ``<user cache>/data``."""
    env = os.environ.get("DERAIN_DATA")
    return Path(env).expanduser() if env else user_cache() / "data"


def named_roots() -> tuple[tuple[str, Path], ...]:
    """The folders printed output names after the variable that sets them."""
    return (("$DERAIN_DATA", data_root()), ("$DERAIN_CACHE", user_cache()),
            ("$DERAIN_RESULTS", results_root()), ("$DERAIN_FIGURES", figures_root()))  # fmt: skip


def shown_path(path: str | Path) -> str:
    """``path`` as printed output and records name it, never with a folder of this machine:
    relative to :func:`project_root`, else under one of :func:`named_roots`
    (``$DERAIN_DATA/...``), beside the project (``../shared/data``) or under ``~``; else as
    given. :func:`real_path` reads it back."""
    given = Path(os.path.abspath(Path(path).expanduser()))
    r = Path(os.path.abspath(project_root()))
    bases = (("", r), *named_roots(), ("..", r.parent), ("~", Path.home()))
    for name, base in bases:  # as written, then with links resolved (../shared a symlink)
        for p, b in ((given, Path(os.path.abspath(base))), (given.resolve(), base.resolve())):
            if p.is_relative_to(b) and b != Path(b.anchor):
                rest = p.relative_to(b).as_posix()
                return "/".join(s for s in (name, "" if rest == "." else rest) if s) or "."
    return str(path)


def real_path(shown: str | Path) -> Path:
    """The folder :func:`shown_path` names (a notebook parameter as the records show it)."""
    text = str(shown)
    for name, base in named_roots():
        if text == name or text.startswith(name + "/"):
            return base / text[len(name) :].lstrip("/")
    p = Path(text).expanduser()
    return p if p.is_absolute() else (project_root() / p).resolve()


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
    no file (which image listings skip)."""
    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_file() and not p.is_dir():
            out.append(path_problem(str(p), "file") or f"{p}: not a file")
    return out

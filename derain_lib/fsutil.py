"""Files and folders (torch-free): where the project, ``results/``, ``figures/`` and the caches
are (the one resolver: :data:`RESULTS_DEFAULT`), atomic writes, folder locks, paths as shown."""

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

PACKAGE_DIR = Path(__file__).resolve().parent
RESULTS_DEFAULT = (
    "env DERAIN_RESULTS, else results/ in the project: env DERAIN_PROJECT, else the source "
    "checkout derain runs from, else (an installed package) the folder holding pyproject.toml "
    "at or above the working directory, else the user data folder"
)
#: Set by ``derain reproduce`` for its kernels: only they write the committed results.
REPRODUCE_ENV = "DERAIN_REPRODUCE"


def source_root() -> Path | None:
    """The source checkout the package is imported from, or None for an installed package."""
    top = PACKAGE_DIR.parent
    return top if (top / "pyproject.toml").is_file() else None


def project_root() -> Path:
    """The project, by the rules of :data:`RESULTS_DEFAULT`."""
    if env := os.environ.get("DERAIN_PROJECT"):
        return Path(env).expanduser().resolve()
    if (source := source_root()) is not None:
        return source
    here = Path.cwd().resolve()
    found = (d for d in (here, *here.parents) if (d / "pyproject.toml").is_file())
    return next(found, Path(platformdirs.user_data_dir("derain")))


def results_root(root: str | Path | None = None) -> Path:
    """``root`` (``--results``), else ``$DERAIN_RESULTS``, else ``<project>/results``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("DERAIN_RESULTS")
    return Path(env).expanduser() if env else project_root() / "results"


def figures_root() -> Path:
    """``$DERAIN_FIGURES``, else ``<project>/figures`` (resolved)."""
    env = os.environ.get("DERAIN_FIGURES")
    return (Path(env).expanduser() if env else project_root() / "figures").resolve()


def scratch_when_by_hand() -> Path | None:
    """In a notebook kernel not started by ``derain reproduce``, point unset ``$DERAIN_RESULTS``
    and ``$DERAIN_FIGURES`` at a scratch folder (returned): a chapter run by hand writes there."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if os.environ.get(REPRODUCE_ENV) or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    root = Path(platformdirs.user_cache_dir("derain")) / "scratch"
    os.environ.setdefault("DERAIN_RESULTS", str(root / "results"))
    os.environ.setdefault("DERAIN_FIGURES", str(root / "figures"))
    return root


def notebooks_dir() -> Path:
    """The study's notebooks: ``<project>/notebooks`` (a checkout; a wheel ships none)."""
    return project_root() / "notebooks"


#: The image file names derain reads and writes (here for the torch-free CLI checks).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, fsynced and renamed onto it on success: a killed
    process leaves the old file or the new one, never a truncated one."""
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
        held = lock.acquire(blocking=wait)
    except Timeout:
        who = path.read_text(errors="replace").strip() or "unknown"
        raise DerainError(
            f"{folder}: this {what} is in use by process {who} (wait for it, or pass --wait)"
        ) from None
    with held:  # released on every way out
        yield


def user_cache() -> Path:
    """derain's cache folder: ``$DERAIN_CACHE``, else ``platformdirs.user_cache_dir("derain")``."""
    env = os.environ.get("DERAIN_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("derain"))


def data_root() -> Path:
    """Where derain keeps data it makes: ``$DERAIN_DATA``, else ``<user cache>/data``."""
    env = os.environ.get("DERAIN_DATA")
    return Path(env).expanduser() if env else user_cache() / "data"


def named_roots() -> tuple[tuple[str, Path], ...]:
    """The folders printed output names after the variable that sets them."""
    return (("$DERAIN_DATA", data_root()), ("$DERAIN_CACHE", user_cache()),
            ("$DERAIN_RESULTS", results_root()), ("$DERAIN_FIGURES", figures_root()))  # fmt: skip


def shown_path(path: str | Path) -> str:
    """``path`` as output and records name it, never with a folder of this machine: relative
    to the project, a :func:`named_roots` variable, ``..`` or ``~`` (:func:`real_path`: back)."""
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
    """Why ``value`` is no file or folder to read (a symlink loop, a broken link, a FIFO...)."""
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
    """:func:`path_problem` of each entry of ``folder`` named like an image that is no file."""
    odd = (p for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
    return [path_problem(str(p), "file") or f"{p}: not a file" for p in odd
            if not p.is_file() and not p.is_dir()]  # fmt: skip

"""Shared fixtures. Test material from ../shared is found through DERAIN_SHARED.

Every test is hermetic unless marked ``real_dirs``: :func:`_hermetic` points every folder
derain reads or writes (results, figures, data, released weights, the user cache and data
folders, platformdirs' and so pooch's bases) at the test's own temporary folder, and an
audit hook makes any write under the real ones (the user's derain cache and data folders,
folders the environment named, this checkout's committed ``results/`` and ``figures/``) fail
the test, even where the code catches the error. :func:`tiny` is the one tiny training
config the tests share.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import pytest
import torch

from derain_lib.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]

#: Environment variables naming a folder derain reads or writes, and the sub-folder of the
#: test's temporary folder each points at (platformdirs, and so pooch, follow the XDG ones).
REDIRECTED = {
    "DERAIN_RESULTS": "results",
    "DERAIN_FIGURES": "figures",
    "DERAIN_DATA": "data",
    "DERAIN_CACHE": "cache",
    "XDG_CACHE_HOME": "xdg-cache",
    "XDG_DATA_HOME": "xdg-data",
}
#: Variables that would send a test elsewhere (a project, a weights folder, a mirror, the
#: pipeline's channels): released weights are looked for in the test's own cache only.
UNSET = (
    "DERAIN_PROJECT",
    "DERAIN_WEIGHTS_DIR",
    "DERAIN_MIRROR",
    "DERAIN_REPRODUCE",
)


def _real_dirs() -> dict[str, Path]:
    """The folders no test may write to, as this process found them at start."""
    env = os.environ
    real = {
        "user cache": Path(platformdirs.user_cache_dir("derain")),
        "user data": Path(platformdirs.user_data_dir("derain")),
        "committed results": ROOT / "results",
        "committed figures": ROOT / "figures",
    }
    for var in (
        "DERAIN_RESULTS",
        "DERAIN_FIGURES",
        "DERAIN_DATA",
        "DERAIN_CACHE",
        "DERAIN_WEIGHTS_DIR",
    ):
        if env.get(var):
            real[f"${var}"] = Path(env[var])
    return {k: Path(os.path.abspath(v.expanduser())) for k, v in real.items()}


REAL = _real_dirs()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: Audit events that change the file system, and which of their arguments are paths written.
_WRITES = {
    "open": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.utime": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
}


class LeakError(AssertionError):
    """A test wrote under a real folder (:data:`REAL`) instead of its temporary one."""


@dataclass
class Guard:
    """What the audit hook checks; ``on`` while a hermetic test runs."""

    on: bool = False
    leaks: list[str] = field(default_factory=list)


GUARD = Guard()


def _audit(event: str, args: tuple) -> None:
    if not GUARD.on or event not in _WRITES:
        return
    if (
        event == "open"
        and not (args[1] and set(args[1]) & set("wax+"))
        and not (args[2] & _WRITE_FLAGS)
    ):
        return
    for i in _WRITES[event]:
        target = args[i]
        if isinstance(target, int) or target is None:
            continue
        path = os.path.abspath(os.fsdecode(target))
        for name, real in REAL.items():
            if path == str(real) or path.startswith(str(real) + os.sep):
                GUARD.leaks.append(f"{event} {path} (under the {name} folder {real})")
                raise LeakError(f"hermetic test wrote under the {name} folder: {event} {path}")


sys.addaudithook(_audit)


@dataclass(frozen=True)
class Hermetic:
    """The test's folders: ``root`` holds one sub-folder per :data:`REDIRECTED` variable."""

    root: Path

    def __getitem__(self, var: str) -> Path:
        return self.root / REDIRECTED[var]


#: The environment as the session found it (what a ``real_dirs`` test gets back).
ORIGINAL = {var: os.environ.get(var) for var in (*REDIRECTED, *UNSET, "MPLCONFIGDIR")}


def _redirect(mp: pytest.MonkeyPatch, root: Path, embedded: Path | None) -> Hermetic:
    """Point :data:`REDIRECTED` at sub-folders of ``root`` and unset :data:`UNSET`;
    ``embedded``: the data folder's ``embedded/`` is a link to it (shared, built once);
    ``DERAIN_BACKEND=torch``."""
    for var, sub in REDIRECTED.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        mp.setenv(var, str(root / sub))
    for var in UNSET:
        mp.delenv(var, raising=False)
    # eager torch unless a test names --backend: no graph exported or timed per test
    mp.setenv("DERAIN_BACKEND", "torch")
    if embedded is not None:
        (root / "data" / "embedded").symlink_to(embedded, target_is_directory=True)
    return Hermetic(root)


@pytest.fixture(scope="session", autouse=True)
def _hermetic_session(tmp_path_factory: pytest.TempPathFactory):
    """The session's own folders, for what runs outside a test (module and session
    fixtures); the guard is on from here to the end."""
    mp = pytest.MonkeyPatch()
    base = _redirect(mp, tmp_path_factory.mktemp("hermetic-session"), None)
    mp.setenv("MPLCONFIGDIR", ORIGINAL["MPLCONFIGDIR"] or str(base.root / "mpl"))
    GUARD.on = True
    try:
        yield base
    finally:
        GUARD.on = False
        mp.undo()


@pytest.fixture(autouse=True)
def _hermetic(
    request: pytest.FixtureRequest,
    _hermetic_session: Hermetic,
    tmp_path_factory: pytest.TempPathFactory,
):
    """Each test's own folders (:data:`REDIRECTED`), the embedded data sets (deterministic,
    built on first use) shared with the session; a write under a real folder fails the test.
    ``@pytest.mark.real_dirs`` opts out: the environment the session started with, no guard."""
    mp = pytest.MonkeyPatch()
    if request.node.get_closest_marker("real_dirs"):
        for var, value in ORIGINAL.items():
            if value is None:
                mp.delenv(var, raising=False)
            else:
                mp.setenv(var, value)
        GUARD.on = False
        try:
            yield None
        finally:
            GUARD.on = True
            mp.undo()
        return
    embedded = _hermetic_session["DERAIN_DATA"] / "embedded"
    embedded.mkdir(exist_ok=True)
    here = _redirect(mp, tmp_path_factory.mktemp("hermetic"), embedded)
    GUARD.leaks.clear()
    try:
        yield here
    finally:
        mp.undo()
    if GUARD.leaks:
        pytest.fail("wrote outside its temporary folders:\n" + "\n".join(GUARD.leaks))


@pytest.fixture
def hermetic(_hermetic: Hermetic | None) -> Hermetic:
    """This test's folders (see :func:`_hermetic`)."""
    assert _hermetic is not None, "a real_dirs test has no hermetic folders"
    return _hermetic


#: The tiny training config: the smoke profile with a SIAN of 4 channels and 2 stages on
#: 48-px patches of the embedded smoke set (16 patches, batch 4: 4 steps per epoch), 2 steps,
#: a checkpoint every step, 1 validation image, 2 test images. Seconds on a CPU.
TINY = (
    "model.kwargs.channels=4",
    "model.kwargs.stages=2",
    "data.patch=48",
    "data.stride=48",
    "train.batch_size=4",
    "train.max_steps=2",
    "train.checkpoint_every=1",
    "train.val_images=1",
    "eval.max_images=2",
)


@dataclass(frozen=True)
class Tiny:
    """:data:`TINY` with extra overrides (later ones win) as a list, a config or CLI args."""

    base: tuple[str, ...] = TINY

    def __call__(self, *extra: str) -> list[str]:
        return [*self.base, *extra]

    def config(self, *extra: str, profile: str = "smoke") -> Config:
        return load_config(profile, self(*extra))

    def args(self, *extra: str) -> list[str]:
        """``--set KEY=VALUE`` pairs for the command line."""
        return [a for s in self(*extra) for a in ("--set", s)]


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    """The shared tiny training config (:class:`Tiny`)."""
    return Tiny()


def shared_dir() -> Path:
    return Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared test material; skips (or, with DERAIN_REQUIRE_SHARED=1, fails) without it."""
    d = shared_dir()
    if not (d / "weights").is_dir() or not (d / "data").is_dir():
        msg = f"shared test material not found at {d} (set DERAIN_SHARED)"
        if os.environ.get("DERAIN_REQUIRE_SHARED") == "1":
            pytest.fail(msg + "; DERAIN_REQUIRE_SHARED=1 forbids skipping")
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _threads_and_seed() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)

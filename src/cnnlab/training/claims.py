"""Who owns a run directory: one process at a time, by an OS lock, from the moment it is named.

``claim_new_run_dir`` names and claims a new directory in one step (so two runs never share one);
``claim`` continues an existing one. A directory holding only what a run killed during start-up
leaves behind is taken over, with a warning, rather than refused as "not empty" forever; and a
``Claim`` notices when its directory is deleted, or deleted and made again, under it.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from cnnlab import fileio
from cnnlab.errors import RunDirError, resume_command
from cnnlab.fileio import remove_stale_temporaries, require_writable_dir
from cnnlab.training.rundir import CHECKPOINT, COMPARE_PLAN, CONFIG, DATASET, ENVIRONMENT, LOCK


def timestamped_dir(root: Path, label: str) -> Path:
    """Create and return a new directory ``root/<YYYYmmdd-HHMMSS>-<label>``, with ``-2``, ``-3``, ...
    appended when that name is taken.

    The one place that names run directories (train, compare and lr-find all come here). Each name
    is claimed with an exclusive ``mkdir``, so two commands started in the same second, even in two
    processes, never share a directory.
    """
    require_writable_dir(root, "--out")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in itertools.count(1):
        path = root / (f"{stamp}-{label}" if suffix == 1 else f"{stamp}-{label}-{suffix}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirError(
                f"--out {path}: cannot create it ({exc.strerror}); choose a writable --out"
            ) from None
        return path
    raise AssertionError("unreachable")


# What a new run writes before its first checkpoint. A directory holding nothing else (and the lock
# file, so a cnnlab process made it) belongs to a run killed during start-up, kill -9 included: the
# same command starts that run over in it rather than refusing a directory nobody can resume.
STARTUP_FILES = frozenset({CONFIG, DATASET, ENVIRONMENT, "model.py", "model.pkl", "tensorboard"})


class DirectoryReplaced(RunDirError):
    """The run directory was deleted (or deleted and made again) while its run used it."""


class Claim:
    """One process's hold on a run directory, for as long as it trains or writes there.

    An OS-level lock (``filelock``, flock on POSIX) on ``RUN_DIR/.cnnlab.lock``: the kernel drops it
    when the process ends, however it ends, so a killed run never leaves a stale claim behind, and a
    second process asking for the same directory is refused at once instead of writing beside the first.
    The directory's identity (device, inode) is kept too: one deleted and made again under the same
    name while the run trains is not the one claimed, and ``check`` says so before anything is written.
    """

    def __init__(self, path: Path, lock: Any):
        self.path, self._lock = path, lock
        self.identity = _identity(path)

    def intact(self) -> bool:
        """Whether the claimed directory is still the one at its path."""
        return _identity(self.path) == self.identity

    def check(self) -> None:
        """A DirectoryReplaced error if the claimed directory is no longer at its path."""
        if not self.intact():
            raise DirectoryReplaced(
                f"{self.path} was deleted or replaced while this run used it; nothing more is written "
                "there (what the run saved went with the directory it claimed)"
            )

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def claim(
    path: Path,
    *,
    new: bool,
    leftovers: frozenset[str] = STARTUP_FILES,
    left_by: str = "a run stopped before its first epoch was saved",
) -> Claim:
    """Lock ``path`` for this process. ``new``: the directory must hold nothing yet (a new run), or only
    ``leftovers`` that a cnnlab process (``left_by``) wrote, which are then cleared with a warning;
    otherwise it is an existing run to continue. Refuses with a RunDirError when another process holds it."""
    import filelock

    had_lock = os.path.lexists(path / LOCK)
    lock = filelock.FileLock(path / LOCK)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RunDirError(
            f"{path} is in use by another cnnlab process (it holds {path / LOCK}); wait for it to "
            "finish, or choose another --out"
        ) from None
    except OSError as exc:
        raise RunDirError(
            f"{path}: cannot lock it ({exc.strerror or exc}); choose a writable --out"
        ) from None
    if new:
        try:
            _take_over(path, had_lock, leftovers, left_by)
        except BaseException:
            lock.release()
            raise
    return Claim(path, lock)


def _take_over(path: Path, had_lock: bool, leftovers: frozenset[str], left_by: str) -> None:
    """Refuse a directory that holds anything, unless all of it is ``leftovers`` of a cnnlab process."""
    found = sorted(p.name for p in path.iterdir() if p.name != LOCK and not _stale_temporary(p))
    if not found:
        return
    if not (had_lock and set(found) <= leftovers):
        raise RunDirError(
            f"--out {path} already exists and is not empty; choose a new directory{_hint(path)}"
        )
    for name in set(found) & STARTUP_FILES:  # what the new run writes again; the rest it overwrites
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    remove_stale_temporaries(path)
    warnings.warn(
        f"{path} held only {', '.join(found)}, left by {left_by}; starting over in it", stacklevel=3
    )


def _stale_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp") and not path.is_dir()


def _hint(path: Path) -> str:
    if (path / CHECKPOINT).is_file():
        return f", or continue it with: {resume_command(path)}"
    if (path / COMPARE_PLAN).is_file():
        return f", or continue it with: {resume_command(path, command='compare')}"
    return ""


def claim_new_run_dir(
    out: str | Path | None, label: str, root: Path = Path("runs"), **leftovers: Any
) -> Claim:
    """A new directory for a run, claimed for this process: ``out`` when given (it must not hold
    anything yet but ``claim``'s leftovers), else a new timestamped one under ``root`` named after
    ``label`` (the model, "compare", "lr-find"). The check and the claim are one step, so two runs
    never share ``out``."""
    if out is None:
        return claim(timestamped_dir(root, label), new=True, **leftovers)
    path = Path(out)
    try:
        if path.is_symlink() and not path.exists():
            raise RunDirError(
                f"--out {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                "create that directory or choose another --out"
            )
        if path.exists() and not path.is_dir():
            kind = fileio.kind_of(os.stat(path).st_mode)
            raise RunDirError(f"--out {path} exists and is {kind}; choose a new directory")
    except OSError as exc:  # a name over 255 bytes, a path over PATH_MAX, a symlink loop
        raise RunDirError(f"--out {path}: cannot use it ({exc.strerror}); choose another --out") from None
    return claim(require_writable_dir(path, "--out"), new=True, **leftovers)

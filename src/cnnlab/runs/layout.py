"""The run directory: its layout, and atomic writes so a kill never leaves half a file.

Every file is written to a temporary name in the same directory, flushed to disk, then
renamed over the old one; ``os.replace`` is atomic on POSIX and Windows, so a reader sees the
old file or the new one, never a mixture.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import itertools
import json
import math
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from cnnlab import fileio
from cnnlab.errors import ConfigError, RunDirError

CONFIG = "config.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
LOSS_PLOT = "loss.png"
REPORT = "classification_report.txt"
ENVIRONMENT = "environment.json"
LR_FIND_TABLE = "lr_find.csv"  # what marks an lr-find directory
COMPARE_PLAN = "compare.json"  # what marks a comparison's directory: its plan, for --resume
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr", "seconds")


def validated(row: Mapping[str, Any]) -> bool:
    """Whether an epoch's row (as metrics.csv's) was scored on a validation split. Its accuracy is
    NaN only when the run has none (``--valid-size 0``); a diverged model's loss can be NaN, its
    accuracy never."""
    return not math.isnan(row["valid_accuracy"])


def best_validated(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row with the highest validation accuracy (the first, on ties); None without a split."""
    return max((r for r in history if validated(r)), key=lambda r: r["valid_accuracy"], default=None)


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, stream: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``.

    What stands at ``path`` decides how: nothing or a regular file is replaced, atomically; a symbolic
    link is written through (the file it names is replaced and the link stays, as a shell's ``>``
    does); a directory, FIFO, device or socket is refused in one line, since a rename would replace
    it (as root, ``/dev/null`` itself). With ``stream``, for an output the user named (``--output
    /dev/stdout``, a pipe), a FIFO, device or socket is written to directly instead.
    """
    try:
        target, mode = fileio.write_target(path)
    except OSError as exc:
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        if stream and not stat.S_ISDIR(mode):
            _write_directly(target, write)
            return
        raise RunDirError(
            f"{path} is {fileio.kind_of(mode)}, not a regular file, and cnnlab replaces only regular "
            "files; choose another path"
        )
    _replace(target, write)


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RunDirError(f"cannot write in {path.parent}: {exc.strerror}; choose a writable --out") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a shared run should read like any new file
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RunDirError(
            f"could not write {path}: {exc.strerror or exc}; the previous version is intact"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_directly(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """A pipe, a terminal or a device the user asked for: written in place, as ``>`` would."""
    try:
        with open(path, "wb") as fh:
            write(fh)
    except OSError as exc:
        raise RunDirError(f"could not write {path}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a killed writer left behind (``write_atomic``'s names). Only files:
    a directory of such a name is not one of them, and is left alone."""
    stale = sorted(p for p in Path(directory).glob(".*.tmp") if p.is_symlink() or not p.is_dir())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text(path: Path, text: str, *, stream: bool = False) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode()), stream=stream)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row[k]) for k in columns})
    write_text(path, buffer.getvalue())


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


# A summary, a config or an environment is a few kilobytes, a history a few hundred bytes an epoch:
# these bounds leave a wide margin and still refuse a runaway or hostile file before it fills memory.
JSON_LIMIT = 16 * fileio.MIB
CSV_LIMIT = 64 * fileio.MIB


def read_json(path: Path, expect: type = dict) -> Any:
    """A JSON file of a run (a regular file of at most JSON_LIMIT bytes) holding an ``expect``."""
    try:
        value = fileio.read_json(path, JSON_LIMIT)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; is {Path(path).parent} a cnnlab run directory?") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable or corrupt ({_reason(exc)})") from None
    if not isinstance(value, expect):
        raise RunDirError(
            f"{path} is corrupt: it holds a JSON {type(value).__name__}, where cnnlab writes "
            f"a {expect.__name__}"
        )
    return value


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.csv as a list of rows (epoch an int, every other column a float), checked column by
    column: a damaged file is one RunDirError, never a half-read history."""
    try:
        reader = csv.DictReader(io.StringIO(fileio.read_regular(path, CSV_LIMIT).decode()))
        missing = [c for c in METRIC_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"its header lacks {', '.join(missing)}")
        return [_metric_row(row) for row in reader]
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; is {Path(path).parent} a cnnlab run directory?") from None
    except (OSError, ValueError, TypeError, csv.Error) as exc:
        raise RunDirError(f"{path} is unreadable or corrupt ({_reason(exc)})") from None


def _metric_row(row: dict) -> dict[str, Any]:
    missing = [c for c in METRIC_COLUMNS if row.get(c) is None]
    if missing or None in row:
        raise ValueError(f"a row lacks {', '.join(missing)}" if missing else "a row has extra fields")
    return {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}


def _reason(exc: BaseException) -> str:
    """An error's own words, on one line and short (a decoder may quote the bad bytes)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())[:200] or type(exc).__name__


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


LOCK = ".cnnlab.lock"
# What a new run writes before its first checkpoint. A directory holding nothing else (and the lock
# file, so a cnnlab process made it) belongs to a run killed during start-up, kill -9 included: the
# same command starts that run over in it rather than refusing a directory nobody can resume.
STARTUP_FILES = frozenset({CONFIG, ENVIRONMENT, "tensorboard"})


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
    from cnnlab.shell import resume_command

    if (path / CHECKPOINT).is_file():
        return f", or continue it with: {resume_command(path)}"
    if (path / COMPARE_PLAN).is_file():
        return f", or continue it with: {resume_command(path, 'compare')}"
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


# A run directory's own files: an output (report --output, export --output) never replaces one.
RUN_FILES = frozenset(
    {CONFIG, METRICS, SUMMARY, CHECKPOINT, LOSS_PLOT, REPORT, ENVIRONMENT, LOCK, COMPARE_PLAN, LR_FIND_TABLE}
)


def prepare_output(path: str | Path, flag: str, *, create: bool = True) -> Path:
    """Check where a user-named output file (``--output``) may go: never over a run directory's own
    files (``RUN/checkpoint.pt``); into a writable directory (made when missing, with ``create``), or
    straight into a pipe or a device the user named (``/dev/stdout``), which ``write_atomic(...,
    stream=True)`` then writes in place."""
    path = Path(path)
    try:
        target, mode = fileio.write_target(path)
    except OSError as exc:
        raise RunDirError(f"{flag} {path}: cannot use it ({exc.strerror})") from None
    if target.name in RUN_FILES and (
        os.path.lexists(target.parent / CONFIG) or os.path.lexists(target.parent / LOCK)
    ):
        raise RunDirError(
            f"{flag} {path} would replace {target.name} of the run directory {target.parent}; "
            "choose another file"
        )
    if mode is not None and stat.S_ISDIR(mode):
        raise RunDirError(f"{flag} {path} is a directory; give a file name")
    if not create and not target.parent.is_dir():
        raise RunDirError(f"cannot write {flag} {path}: {target.parent} is not a directory")
    if mode is None or stat.S_ISREG(mode):
        require_writable_dir(target.parent, flag)
    return path


def require_writable_dir(path: str | Path, flag: str) -> Path:
    """Create ``path`` if needed and prove it writable by making (and removing) a temporary file.

    A probe rather than ``os.access``: access() says yes to root on a read-only mount and
    knows nothing of full disks' quotas; the probe asks the filesystem itself.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(
            f"{flag} {path}: cannot create it ({exc.strerror}); choose a writable directory"
        ) from None
    if not path.is_dir():
        raise RunDirError(f"{flag} {path} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cnnlab-probe.", suffix=".tmp", dir=path)
    except OSError as exc:
        raise RunDirError(
            f"{flag} {path} is not writable ({exc.strerror}); choose a writable directory"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def as_path(value: Any, what: str) -> Path:
    """``value`` as a Path, or a ConfigError naming ``what`` when it is not a path at all."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return Path(value)
    raise ConfigError(f"{what} must be a path (str or pathlib.Path). Received: {value!r:.80}")


def require_run_dir(path: str | Path) -> Path:
    """An existing run directory with a config, or a RunDirError that says what is wrong."""
    path = as_path(path, "a run directory")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise RunDirError(
            f"run directory {path} does not exist; pass a directory made by `cnnlab train`"
        ) from None
    except OSError as exc:  # a name over 255 bytes, a path over PATH_MAX, a symlink loop, no permission
        raise RunDirError(f"{path}: cannot use it as a run directory ({exc.strerror})") from None
    if not stat.S_ISDIR(mode):
        raise RunDirError(
            f"{path} is {fileio.kind_of(mode)}, not a run directory; pass a directory made by `cnnlab train`"
        )
    for marker, made_by in ((LR_FIND_TABLE, "cnnlab lr-find"), (COMPARE_PLAN, "cnnlab compare")):
        if (path / marker).exists():
            raise RunDirError(
                f"{path} was made by `{made_by}`, not `cnnlab train`; pass a run directory made by "
                "`cnnlab train` (a comparison's runs are its subdirectories)"
            )
    if not (path / CONFIG).is_file():
        raise RunDirError(f"{path} has no {CONFIG}; pass a directory made by `cnnlab train`")
    return path

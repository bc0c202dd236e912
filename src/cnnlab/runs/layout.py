"""The run directory: its layout, and atomic writes so a kill never leaves half a file.

Every file is written to a temporary name in the same directory, flushed to disk, then
renamed over the old one; ``os.replace`` is atomic on POSIX and Windows, so a reader sees the
old file or the new one, never a mixture.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import tempfile
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
DATASET = "dataset.json"  # the dataset the run trained on: classes, input shape, normalisation
LR_FIND_TABLE = "lr_find.csv"  # what marks an lr-find directory
COMPARE_PLAN = "compare.json"  # what marks a comparison's directory: its plan, for --resume
LOCK = ".cnnlab.lock"  # the OS lock a run's owner holds (cnnlab.runs.claims)
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
    named = f"{flag}{str(path)!r}" if flag.endswith("=") else f"{flag} {path}"  # output='x' or --output x
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(
            f"{named}: cannot create it ({exc.strerror}); choose a writable directory"
        ) from None
    if not path.is_dir():
        raise RunDirError(f"{named} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cnnlab-probe.", suffix=".tmp", dir=path)
    except OSError as exc:
        raise RunDirError(f"{named} is not writable ({exc.strerror}); choose a writable directory") from None
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

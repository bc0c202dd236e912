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
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from cnnlab.errors import RunDirError, option

CONFIG = "config.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
LOSS_PLOT = "loss.png"
REPORT = "classification_report.txt"
ENVIRONMENT = "environment.json"
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr", "seconds")


def validated(row: Mapping[str, Any]) -> bool:
    """Whether an epoch's row (as metrics.csv's) was scored on a validation split. Its accuracy is
    NaN only when the run has none (``--valid-size 0``); a diverged model's loss can be NaN, its
    accuracy never."""
    return not math.isnan(row["valid_accuracy"])


def best_validated(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row with the highest validation accuracy (the first, on ties); None without a split."""
    return max((r for r in history if validated(r)), key=lambda r: r["valid_accuracy"], default=None)


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
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


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a killed writer left behind (``write_atomic``'s names)."""
    stale = sorted(Path(directory).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode()))


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


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; is {Path(path).parent} a cnnlab run directory?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is unreadable or corrupt ({exc})") from None


def timestamped_dir(root: Path, label: str) -> Path:
    """Create and return a new directory ``root/<YYYYmmdd-HHMMSS>-<label>``, with ``-2``, ``-3``, ...
    appended when that name is taken.

    The one place that names run directories (train, compare and lr-find all come here). Each name
    is claimed with an exclusive ``mkdir``, so two commands started in the same second, even in two
    processes, never share a directory.
    """
    require_writable_dir(root, option("out"))
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


class Claim:
    """One process's hold on a run directory, for as long as it trains or writes there.

    An OS-level lock (``filelock``, flock on POSIX) on ``RUN_DIR/.cnnlab.lock``: the kernel drops it
    when the process ends, however it ends, so a killed run never leaves a stale claim behind, and a
    second process asking for the same directory is refused at once instead of writing beside the first.
    """

    def __init__(self, path: Path, lock: Any):
        self.path, self._lock = path, lock

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim(path: Path, *, new: bool) -> Claim:
    """Lock ``path`` for this process. ``new``: the directory must hold nothing else yet (a new run);
    otherwise it is an existing run to continue. Refuses with a RunDirError when another process holds it."""
    import filelock

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
    if new and any(p.name != LOCK for p in path.iterdir()):
        lock.release()
        raise RunDirError(
            f"--out {path} already exists and is not empty; choose a new directory "
            "(or use --resume to continue it)"
        )
    return Claim(path, lock)


def claim_new_run_dir(out: str | Path | None, label: str, root: Path = Path("runs")) -> Claim:
    """A new directory for a run, claimed for this process: ``out`` when given (it must not hold
    anything yet), else a new timestamped one under ``root`` named after ``label`` (the model,
    "compare", "lr-find"). The check and the claim are one step, so two runs never share ``out``."""
    if out is None:
        return claim(timestamped_dir(root, label), new=True)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path} exists and is a file; choose a new directory")
    return claim(require_writable_dir(path, option("out")), new=True)


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


def require_run_dir(path: str | Path) -> Path:
    """An existing run directory with a config, or a RunDirError that says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"run directory {path} does not exist; pass a directory made by `cnnlab train`")
    if not path.is_dir():
        raise RunDirError(f"{path} is a file, not a run directory; pass a directory made by `cnnlab train`")
    if not (path / CONFIG).is_file():
        raise RunDirError(f"{path} has no {CONFIG}; pass a directory made by `cnnlab train`")
    return path

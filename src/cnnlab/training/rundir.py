"""The run directory: the files a run writes there, reading them back checked, and what may be
written beside them.

Training owns this layout, since it writes every one of these files; the run loader, reporting and
export above it read it. How a file is written (atomically) and read (bounded, never blocking) is
``cnnlab.fileio``'s job; who may write in a run directory is ``claims``'.
"""

from __future__ import annotations

import csv
import math
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
LOCK = ".cnnlab.lock"  # the OS lock a run's owner holds (cnnlab.training.claims)
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr", "seconds")

# A run directory's own files: an output (report --output, export --output) never replaces one.
RUN_FILES = frozenset(
    {CONFIG, METRICS, SUMMARY, CHECKPOINT, LOSS_PLOT, REPORT, ENVIRONMENT, LOCK, COMPARE_PLAN, LR_FIND_TABLE}
)

# A summary, a config or an environment is a few kilobytes, a history a few hundred bytes an epoch:
# these bounds leave a wide margin and still refuse a runaway or hostile file before it fills memory.
JSON_LIMIT = 16 * fileio.MIB
CSV_LIMIT = 64 * fileio.MIB


def validated(row: Mapping[str, Any]) -> bool:
    """Whether an epoch's row (as metrics.csv's) was scored on a validation split. Its accuracy is
    NaN only when the run has none (``--valid-size 0``); a diverged model's loss can be NaN, its
    accuracy never."""
    return not math.isnan(row["valid_accuracy"])


def best_validated(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row with the highest validation accuracy (the first, on ties); None without a split."""
    return max((r for r in history if validated(r)), key=lambda r: r["valid_accuracy"], default=None)


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
        rows = fileio.read_csv(path, METRIC_COLUMNS, CSV_LIMIT)
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; is {Path(path).parent} a cnnlab run directory?") from None
    except (OSError, ValueError, TypeError, csv.Error) as exc:
        raise RunDirError(f"{path} is unreadable or corrupt ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """An error's own words, on one line and short (a decoder may quote the bad bytes)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())[:200] or type(exc).__name__


def prepare_output(path: str | Path, flag: str, *, create: bool = True) -> Path:
    """Check where a user-named output file (``--output``) may go: never over a run directory's own
    files (``RUN/checkpoint.pt``); into a writable directory (made when missing, with ``create``), or
    straight into a pipe or a device the user named (``/dev/stdout``), which ``fileio.write_atomic(...,
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
        fileio.require_writable_dir(target.parent, flag)
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

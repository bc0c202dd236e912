"""Where a dataset's files are, and fetching them when they are nowhere.

Where the files are looked for, in order (the first place that holds all of them wins):
  1. ``--data-dir`` (``data_dir`` argument)
  2. the environment variable ``CNNLAB_DATA_DIR``
  3. the user cache directory (``platformdirs.user_cache_dir("cnnlab")/<dataset>``)
  4. the dataset's system directories (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``,
     Debian's ``dataset-fashion-mnist`` package)
An explicit directory (1 or 2) that lacks the files is an error rather than silently skipped,
since the user asked for it by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cnnlab.errors import DataError, option, spelled

ENV_VAR = "CNNLAB_DATA_DIR"


class Files(Protocol):
    """What finding a dataset's files needs to know of it."""

    @property
    def name(self) -> str: ...

    @property
    def system_dirs(self) -> Sequence[Path]: ...

    def missing(self, directory: Path) -> list[str]:
        """The files ``directory`` lacks (an empty list: it holds the dataset)."""
        ...

    def download(self, directory: Path, quiet: bool = False) -> Path: ...


def cache_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlab"))


def user_cache_dir(name: str = "fashion-mnist") -> Path:
    return cache_root() / name


def _holds(files: Files, directory: Path) -> bool:
    try:
        return directory.is_dir() and not files.missing(directory)
    except OSError:  # a directory we may not list is not where the data is
        return False


def locate(files: Files, data_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Where the files are and why: ``(directory or None, reason)``. Reads no file contents."""
    if data_dir is not None:
        return _explicit(files, Path(data_dir), option("data_dir"))
    if os.environ.get(ENV_VAR):
        return _explicit(files, Path(os.environ[ENV_VAR]), f"${ENV_VAR}")
    cache = user_cache_dir(files.name)
    if _holds(files, cache):
        return cache, f"the user cache directory {cache}"
    for directory in files.system_dirs:
        if _holds(files, directory):
            return directory, f"the system directory {directory}"
    places = " nor in ".join(str(d) for d in (cache, *files.system_dirs))
    return None, f"not found in the user cache ({places})" if files.system_dirs else f"not in {cache}"


def _explicit(files: Files, directory: Path, source: str) -> tuple[Path, str]:
    missing = files.missing(directory) if directory.is_dir() else [f"the directory {directory} itself"]
    if missing:
        raise DataError(
            f"{source} {directory} lacks {files.name}'s {', '.join(missing)}; run "
            f"`cnnlab data download {files.name} --data-dir {directory}` or point {source} elsewhere"
        )
    return directory, f"given by {source}"


def ensure(
    files: Files, data_dir: str | os.PathLike | None = None, *, download: bool = True, quiet: bool = False
) -> Path:
    """The directory to read from; downloads into the user cache when nothing is found."""
    directory, reason = locate(files, data_dir)
    if directory is not None:
        return directory
    if not download:
        where = spelled("--data-dir DIR", "data_dir=DIR")
        raise DataError(f"{files.name} is {reason}; pass {where}, or run `cnnlab data download {files.name}`")
    return files.download(user_cache_dir(files.name), quiet=quiet)


def recorded_or_search(files: Files, recorded: str | os.PathLike | None) -> str | None:
    """A run's recorded data directory while it still holds the files, else None (search as usual):
    a run trained elsewhere, or whose data moved, still evaluates wherever the data is now."""
    if recorded is not None and _holds(files, Path(recorded)):
        return str(recorded)
    return None

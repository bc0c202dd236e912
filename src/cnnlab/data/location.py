"""Where the Fashion-MNIST files are, and fetching them when they are nowhere.

Where the data is looked for, in order (the first that holds all four files wins):
  1. ``--data-dir`` (``data_dir`` argument)
  2. the environment variable ``CNNLAB_DATA_DIR``
  3. the user cache directory (``platformdirs.user_cache_dir("cnnlab")/fashion-mnist``)
  4. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package)
An explicit directory (1 or 2) that lacks the files is an error rather than silently
skipped, since the user asked for it by name.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.data.files import DEBIAN_DIR, ENV_VAR, FILES
from cnnlab.errors import DataError, option, spelled


def user_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlab")) / "fashion-mnist"


def has_all_files(directory: Path) -> bool:
    return all((directory / f.name).is_file() for f in FILES.values())


def locate(data_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Where the data is and why: ``(directory or None, reason)``. Reads no file contents."""
    if data_dir is not None:
        return _explicit(Path(data_dir), option("data_dir"))
    if os.environ.get(ENV_VAR):
        return _explicit(Path(os.environ[ENV_VAR]), f"${ENV_VAR}")
    cache = user_cache_dir()
    if has_all_files(cache):
        return cache, f"the user cache directory {cache}"
    if has_all_files(DEBIAN_DIR):
        return DEBIAN_DIR, "Debian's dataset-fashion-mnist package"
    return None, (f"not found in the user cache ({cache}) nor in {DEBIAN_DIR}")


def _explicit(directory: Path, source: str) -> tuple[Path, str]:
    if not has_all_files(directory):
        missing = [f.name for f in FILES.values() if not (directory / f.name).is_file()]
        raise DataError(
            f"{source} {directory} lacks {', '.join(missing)}; run "
            f"`cnnlab data download --data-dir {directory}` or point {source} elsewhere"
        )
    return directory, f"given by {source}"


def ensure_data(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, quiet: bool = False
) -> Path:
    """The directory to read from; downloads into the user cache when nothing is found."""
    directory, reason = locate(data_dir)
    if directory is not None:
        return directory
    if not download:
        where = spelled("--data-dir DIR", "data_dir=DIR")
        raise DataError(f"Fashion-MNIST is {reason}; pass {where}, or run `cnnlab data download`")
    from cnnlab.data.download import download_all

    return download_all(user_cache_dir(), quiet=quiet)


def recorded_or_search(recorded: str | os.PathLike | None) -> str | None:
    """A run's recorded data directory while it still holds the files, else None (search as usual):
    a run trained elsewhere, or whose data moved, still evaluates wherever the data is now."""
    if recorded is not None and has_all_files(Path(recorded)):
        return str(recorded)
    return None

"""What cnnlab opens and writes, and how: only regular files, never more than a stated size, never
blocking, and never half a file.

A FIFO given as a data file or a cache would block a read forever; ``/dev/zero`` or a sparse file of
many gigabytes would fill the memory; ``/dev/null`` as a place to write would be replaced by a
rename. So every read opens without blocking and checks, on the open descriptor (no race with a
swap), that it holds a regular file of a bounded size; and every write first asks what stands at
the target (``write_target``).

Every write goes to a temporary name in the same directory, is flushed to disk, then renamed over
the old file; ``os.replace`` is atomic on POSIX and Windows, so a reader sees the old file or the
new one, never a mixture, and a kill never leaves half a file.

Read refusals are ``OSError``s with a ``strerror`` that says what is wrong, so each caller's
``except OSError`` turns them into its own one-line message; a write that fails raises a
``RunDirError`` whose message is already that one line.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from cnnlab.errors import RunDirError

MIB = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words: "a regular file", "a FIFO (named pipe)", ..."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def not_regular(path: str | os.PathLike, mode: int) -> OSError:
    return OSError(errno.EINVAL, f"it is {kind_of(mode)}, not a regular file", os.fspath(path))


def too_large(path: str | os.PathLike, size: int, limit: int) -> OSError:
    return OSError(
        errno.EFBIG, f"it is {size:,} bytes, more than the {limit:,} cnnlab reads from it", os.fspath(path)
    )


def open_regular(path: str | os.PathLike, limit: int | None = None):
    """A binary file object for reading ``path``, which must be a regular file of at most ``limit``
    bytes. Opened with O_NONBLOCK, so a FIFO or a device is refused instead of waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode)
        if limit is not None and st.st_size > limit:
            raise too_large(path, st.st_size, limit)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (checked again after the read,
    as a file that grows while read could pass the first check)."""
    with open_regular(path, limit) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise too_large(path, len(data), limit)
    return data


def write_target(path: str | os.PathLike) -> tuple[Path, int | None]:
    """Where a write to ``path`` lands and what stands there now: ``(target, st_mode or None)``.

    A symbolic link is written through: the target is the file it names (resolved, so the link itself
    stays), as ``>`` in a shell writes through one. None: nothing is there yet.
    """
    path = Path(path)
    try:
        st = os.stat(path)  # follows links
    except FileNotFoundError:
        return (Path(os.path.realpath(path)) if path.is_symlink() else path), None
    return (Path(os.path.realpath(path)) if path.is_symlink() else path), st.st_mode


def parse_json(data: bytes | str) -> object:
    """JSON, with nesting too deep for the parser (``[[[[...`` 100,000 deep) a ValueError like any
    other malformed JSON, not a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("it is nested too deeply to be a file cnnlab wrote") from None


def read_json(path: str | os.PathLike, limit: int) -> object:
    """The JSON in ``path``, a regular file of at most ``limit`` bytes: OSError when the file cannot
    be read, ValueError when it is not JSON."""
    return parse_json(read_regular(path, limit))


def read_csv(path: str | os.PathLike, columns: Iterable[str], limit: int) -> list[dict[str, str]]:
    """The rows of the CSV file ``path`` (a regular file of at most ``limit`` bytes), each with every
    one of ``columns`` and no field beyond the header: OSError when the file cannot be read,
    ValueError (or csv.Error) when it is not such a table."""
    required = list(columns)
    reader = csv.DictReader(io.StringIO(read_regular(path, limit).decode()))
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"its header lacks {', '.join(missing)}")
    rows = []
    for row in reader:
        missing = [c for c in required if row.get(c) is None]
        if missing or None in row:
            raise ValueError(f"a row lacks {', '.join(missing)}" if missing else "a row has extra fields")
        rows.append(row)
    return rows


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, stream: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``.

    What stands at ``path`` decides how: nothing or a regular file is replaced, atomically; a symbolic
    link is written through (the file it names is replaced and the link stays, as a shell's ``>``
    does); a directory, FIFO, device or socket is refused in one line, since a rename would replace
    it (as root, ``/dev/null`` itself). With ``stream``, for an output the user named (``--output
    /dev/stdout``, a pipe), a FIFO, device or socket is written to directly instead.
    """
    try:
        target, mode = write_target(path)
    except OSError as exc:
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        if stream and not stat.S_ISDIR(mode):
            _write_directly(target, write)
            return
        raise RunDirError(
            f"{path} is {kind_of(mode)}, not a regular file, and cnnlab replaces only regular "
            "files; choose another path"
        )
    _replace(target, write)


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RunDirError(
            f"cannot write in {path.parent}: {exc.strerror}; choose a directory you can write to"
        ) from None
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

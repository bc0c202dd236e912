"""What cnnlab opens, and how: only regular files, never more than a stated size, never blocking.

A FIFO given as a data file or a cache would block a read forever; ``/dev/zero`` or a sparse file of
many gigabytes would fill the memory; ``/dev/null`` as a place to write would be replaced by a
rename. So every read opens without blocking and checks, on the open descriptor (no race with a
swap), that it holds a regular file of a bounded size; and every write first asks what stands at
the target (``write_target``).

Refusals are ``OSError``s with a ``strerror`` that says what is wrong, so each caller's existing
``except OSError`` turns them into its own one-line message.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

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
    import json

    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("it is nested too deeply to be a file cnnlab wrote") from None


def read_json(path: str | os.PathLike, limit: int) -> object:
    """The JSON in ``path``, a regular file of at most ``limit`` bytes: OSError when the file cannot
    be read, ValueError when it is not JSON."""
    return parse_json(read_regular(path, limit))

"""An image folder's decoded pixels and its images' headers, kept between loads: only the first load
of a folder decodes it, and only the first scan opens every image to learn its size and colour.

One file per folder, image size and colour mode, ``<cache>/<digest>.npz``, where ``<cache>`` is
``platformdirs.user_cache_dir("cnnlab")/folders`` (``~/.cache/cnnlab/folders`` on Linux), or
``$CNNLAB_FOLDER_CACHE`` (``/dev/null`` turns the cache off). It holds the pixels, uint8 (N, C, H, W),
and the digest of everything that decides them (``key``): each image's path, size, mtime and ctime
(the kernel sets ctime on every change, and no tool can set it back), the image size and colour
mode, and the decoder's version. A file added, removed, renamed, rewritten or touched changes the
key, and the folder is decoded again and the cache written over. What the headers said (``cached_record``)
is kept the same way in ``<cache>/<digest>.json``, a small JSON record of its key and value.

It is only a shortcut. It is written atomically (``cnnlab.fileio``) and only once every image has
been unchanged for ``SETTLED_NS`` (a file rewritten twice within one timestamp tick would otherwise
keep its identity). It is read only from a regular file no larger than its pixels need, its headers
checked before its pixels are read, and its zip CRC-32 checked as they are: anything wrong with it
(damaged, truncated, a directory or FIFO in its place, a full disk or a read-only directory) costs
a decode and at most one warning, never a load or a file of the user's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from cnnlab import fileio
from cnnlab.data.verified import SETTLED_NS
from cnnlab.errors import CnnlabError

__all__ = ["CACHE_VAR", "cache_dir", "cached", "cached_record"]

CACHE_VAR = "CNNLAB_FOLDER_CACHE"
FORMAT = 1  # the layout of the file; a file of another layout is written over
HEADER_ROOM = 64 * 1024  # the zip's and the .npy headers, around the pixels
CHUNK = 4 * fileio.MIB  # pixels are read in pieces of this size, so a read never holds them twice
RECORD_FORMAT = 1  # the layout of a JSON record; a record of another layout is written over
RECORD_ROOM = 64 * 1024  # a record's key and framing
RECORD_PER_FILE = 64  # a record of the folder's headers grows by at most a distinct size per image

T = TypeVar("T")
R = TypeVar("R")


def cache_dir() -> Path | None:
    """Where decoded folders are kept; None when ``$CNNLAB_FOLDER_CACHE`` names a device (/dev/null)."""
    if os.environ.get(CACHE_VAR):
        directory = Path(os.environ[CACHE_VAR])
        try:
            if stat.S_ISCHR(directory.stat().st_mode):
                return None
        except OSError:
            pass  # created when first written, or said to be unusable then
        return directory
    from cnnlab.data.location import cache_root

    return cache_root() / "folders"


def cached(
    name: str, paths: Sequence[Path], shape: tuple[int, ...], decode: Callable[[], np.ndarray], version: str
) -> np.ndarray:
    """The pixels of ``paths``, uint8 (len(paths), *shape): from the cache when it holds them for these
    files as they are now, else from ``decode()`` (then kept). ``name`` says which folder, image size
    and colour mode (one cache file each); ``version`` is the decoder's."""
    full_shape = (len(paths), *shape)
    return _through_cache(
        _Entry(name, ".npz", paths, [FORMAT, version, list(shape)]),
        read=lambda path, key: _read(path, key, full_shape),
        make=decode,
        write=lambda fh, key, pixels: np.savez(fh, key=np.frombuffer(key, np.uint8), pixels=pixels),
        said=("the images were decoded again", "the decoded images", "decodes them again"),
    )


def cached_record(
    name: str, paths: Sequence[Path], make: Callable[[], object], version: str, parse: Callable[[Any], T]
) -> T:
    """``parse(make())``, where ``make()`` reads the headers of ``paths`` and returns a small JSON
    value. The value is kept as a JSON record (``<cache>/<digest>.json``, one per ``name``) keyed, as
    the pixels are, on each file's path, size, mtime and ctime and on ``version``: a later call for
    the files as they are now opens none of them. ``parse`` raises for a value it cannot take (a
    record damaged or written by hand), which is then made again; a fresh value goes through JSON
    too, so both ways give the same result."""
    limit = RECORD_ROOM + RECORD_PER_FILE * len(paths)

    def read(path: Path, key: bytes) -> object:
        value = _read_record(path, key, limit)
        parse(value)
        return value

    value = _through_cache(
        _Entry(name, ".json", paths, [RECORD_FORMAT, version]),
        read=read,
        make=lambda: json.loads(json.dumps(make())),
        write=lambda fh, key, value: fh.write(json.dumps({"key": key.hex(), "value": value}).encode()),
        said=("the image headers were read again", "the image headers", "reads them again"),
    )
    return parse(value)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One cache file: ``name`` (hashed into its file name), its suffix, the files it stands for and
    what else decides its content (its layout and the reader's version)."""

    name: str
    suffix: str
    paths: Sequence[Path]
    decided_by: list


def _through_cache(
    entry: _Entry,
    read: Callable[[Path, bytes], R],
    make: Callable[[], R],
    write: Callable[[BinaryIO, bytes, R], object],
    said: tuple[str, str, str],
) -> R:
    """``read`` the cache file when it holds ``entry``'s files as they are now, else ``make()`` and
    ``write`` it (once the files have settled). ``said`` words the warnings: (what was done instead,
    what is kept, what each load does without the cache)."""
    directory = cache_dir()
    try:
        key, settled = _key(entry.paths, entry.decided_by)
    except OSError:
        directory = None  # a file vanished or is unreadable: make() names it
    if directory is None:
        return make()
    path = directory / f"{hashlib.sha256(entry.name.encode()).hexdigest()[:32]}{entry.suffix}"
    try:
        return read(path, key)
    except _Missing:
        problem = None
    except (
        Exception
    ) as exc:  # a damaged file makes zipfile, numpy and json raise anything; it is only a cache
        problem = f"{path} could not be used ({_reason(exc)}); {said[0]}"
    made = make()
    if settled:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fileio.write_atomic(path, lambda fh: write(fh, key, made))
        except (OSError, CnnlabError) as exc:
            problem = (
                f"{said[1]} cannot be kept in {directory} ({_reason(exc)}); each load {said[2]} "
                f"(set ${CACHE_VAR} to a writable directory, or to /dev/null for no cache)"
            )
            if directory in _TOLD_UNWRITABLE:  # one load writes the pixels and the headers: say it once
                problem = None
            _TOLD_UNWRITABLE.add(directory)
    if problem:
        warnings.warn(problem, stacklevel=4)
    return made


# Cache directories this process has already said it cannot write to.
_TOLD_UNWRITABLE: set[Path] = set()


class _Missing(Exception):
    """No cache for this key: never written, or written for another state of the folder."""


def _key(paths: Sequence[Path], decided_by: list) -> tuple[bytes, bool]:
    """(the digest of what decides the content: each file's identity and ``decided_by``, whether every
    file has been unchanged for SETTLED_NS)."""
    identities = []
    newest = 0
    for path in paths:
        st = os.stat(path)
        identities.append((str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    described = json.dumps([*decided_by, identities])
    return hashlib.sha256(described.encode()).digest(), time.time_ns() - newest > SETTLED_NS


def _read_record(path: Path, key: bytes, limit: int) -> object:
    try:
        record = fileio.read_json(path, limit)
    except FileNotFoundError:
        raise _Missing() from None
    if not isinstance(record, dict) or not isinstance(record.get("key"), str) or "value" not in record:
        raise ValueError("it is not a record cnnlab wrote")
    if record["key"] != key.hex():
        raise _Missing()
    return record["value"]


def _read(path: Path, key: bytes, shape: tuple[int, ...]) -> np.ndarray:
    limit = int(np.prod(shape)) + HEADER_ROOM
    try:
        fh = fileio.open_regular(path, limit)
    except FileNotFoundError:
        raise _Missing() from None
    with fh, zipfile.ZipFile(fh) as archive:
        if _member(archive, "key", (len(key),)).tobytes() != key:
            raise _Missing()
        return _member(archive, "pixels", shape)


def _member(archive: zipfile.ZipFile, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array ``name`` of shape ``shape``; its .npy header is checked before a pixel is read,
    and reading to the end checks the zip's CRC-32 of it."""
    with archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"its {name} array has .npy version {version}")
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        found, fortran_order, dtype = read_header(member)
        if tuple(found) != shape or fortran_order or dtype != np.uint8:
            raise ValueError(f"its {name} array is {dtype} {tuple(found)}, not uint8 {shape}")
        out = np.empty(shape, np.uint8)
        flat = out.reshape(-1)
        for start in range(0, flat.size, CHUNK):
            piece = member.read(min(CHUNK, flat.size - start))
            if len(piece) != min(CHUNK, flat.size - start):
                raise ValueError(f"its {name} array is truncated")
            flat[start : start + len(piece)] = np.frombuffer(piece, np.uint8)
        if member.read(1):
            raise ValueError(f"its {name} array is longer than its header says")
    return out


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]

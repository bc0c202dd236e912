"""An image folder's decoded pixels, kept between loads: only the first load of a folder decodes it.

One file per folder, image size and colour mode, ``<cache>/<digest>.npz``, where ``<cache>`` is
``platformdirs.user_cache_dir("cnnlab")/folders`` (``~/.cache/cnnlab/folders`` on Linux), or
``$CNNLAB_FOLDER_CACHE`` (``/dev/null`` turns the cache off). It holds the pixels, uint8 (N, C, H, W),
and the digest of everything that decides them (``key``): each image's path, size, mtime and ctime
(the kernel sets ctime on every change, and no tool can set it back), the image size and colour
mode, and the decoder's version. A file added, removed, renamed, rewritten or touched changes the
key, and the folder is decoded again and the cache written over.

It is only a shortcut. It is written atomically (``cnnlab.fileio``) and only once every image has
been unchanged for ``SETTLED_NS`` (a file rewritten twice within one timestamp tick would otherwise
keep its identity). It is read only from a regular file no larger than its pixels need, its headers
checked before its pixels are read, and its zip CRC-32 checked as they are: anything wrong with it
(damaged, truncated, a directory or FIFO in its place, a full disk or a read-only directory) costs
a decode and at most one warning, never a load or a file of the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cnnlab import fileio
from cnnlab.data.verified import SETTLED_NS
from cnnlab.errors import CnnlabError

__all__ = ["CACHE_VAR", "cache_dir", "cached"]

CACHE_VAR = "CNNLAB_FOLDER_CACHE"
FORMAT = 1  # the layout of the file; a file of another layout is written over
HEADER_ROOM = 64 * 1024  # the zip's and the .npy headers, around the pixels
CHUNK = 4 * fileio.MIB  # pixels are read in pieces of this size, so a read never holds them twice


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
    directory = cache_dir()
    try:
        key, settled = _key(paths, shape, version)
    except OSError:
        directory = None  # an image vanished or is unreadable: the decode names it
    if directory is None:
        return decode()
    path = directory / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.npz"
    full_shape = (len(paths), *shape)
    try:
        return _read(path, key, full_shape)
    except _Missing:
        problem = None
    except Exception as exc:  # a damaged file makes zipfile and numpy raise anything; it is only a cache
        problem = f"{path} could not be used ({_reason(exc)}); the images were decoded again"
    pixels = decode()
    if settled:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fileio.write_atomic(
                path, lambda fh: np.savez(fh, key=np.frombuffer(key, np.uint8), pixels=pixels)
            )
        except (OSError, CnnlabError) as exc:
            problem = (
                f"the decoded images cannot be kept in {directory} ({_reason(exc)}); each load decodes "
                f"them again (set ${CACHE_VAR} to a writable directory, or to /dev/null for no cache)"
            )
    if problem:
        warnings.warn(problem, stacklevel=3)
    return pixels


class _Missing(Exception):
    """No cache for this key: never written, or written for another state of the folder."""


def _key(paths: Sequence[Path], shape: tuple[int, ...], version: str) -> tuple[bytes, bool]:
    """(the digest of what decides the pixels, whether every file has been unchanged for SETTLED_NS)."""
    identities = []
    newest = 0
    for path in paths:
        st = os.stat(path)
        identities.append((str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    described = json.dumps([FORMAT, version, list(shape), identities])
    return hashlib.sha256(described.encode()).digest(), time.time_ns() - newest > SETTLED_NS


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

"""The IDX format (LeCun's MNIST files): read any IDX file, raw or gzipped, into a NumPy array."""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from cnnlab import fileio
from cnnlab.errors import DataError

# IDX type codes: code -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# The most an IDX file may declare: Fashion-MNIST's training images are 47 MB, so this leaves room for
# larger IDX data sets while refusing a header (or a gzip bomb's) that asks for more than memory holds.
MAX_IDX_BYTES = 1 << 30
_HEADER_MAX = 4 + 4 * 255


def open_bytes(path: Path) -> bytes | bytearray:
    """The file's bytes, decompressed when it is gzip (by magic, not by name), never more than its IDX
    header declares (one byte more, to see a file longer than that): a gzip that inflates to gigabytes,
    or a huge sparse file, is refused after reading what the header promised. Only regular files are
    opened, without blocking, so a FIFO is refused rather than waited on."""
    try:
        with fileio.open_regular(path) as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            if not gzipped:
                return _read_declared(fh, path, os.fstat(fh.fileno()).st_size)
            with gzip.GzipFile(fileobj=fh) as inflated:
                return _read_declared(inflated, path, None)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # truncated, or a byte changed in the stream
        raise DataError(f"{path} is a corrupt gzip file ({exc}); delete it and download again") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_declared(fh: io.BufferedIOBase, path: Path, size: int | None) -> bytes | bytearray:
    """The IDX header, then as many bytes as it declares plus one; ``size``: the file's, when known."""
    head = fh.read(4)
    if len(head) == 4:
        head += fh.read(4 * head[3])
    declared = _declared_size(head)
    if declared is None:  # not an IDX header: parse_idx says why from these bytes
        if size is None:  # but a gzip damaged near its start is the first thing to say
            fh.read(1 << 20)
        return head
    if declared > MAX_IDX_BYTES:
        raise DataError(
            f"{path} declares {declared:,} bytes in its IDX header, more than the {MAX_IDX_BYTES:,} "
            "cnnlab reads; it is not a data set cnnlab can load"
        )
    if size is not None and size != declared:
        raise _wrong_size(path, size, _shape(head), declared)
    data = bytearray(declared + 1)  # read in place, a MiB at a time: the content is held once
    data[: len(head)] = head
    filled, view = len(head), memoryview(data)
    while filled < len(data) and (n := fh.readinto(view[filled : filled + (1 << 20)])):
        filled += n
    view.release()
    del data[filled:]
    return data


def _declared_size(head: bytes) -> int | None:
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES or len(head) < 4 + 4 * head[3]:
        return None
    return len(head) + math.prod(_shape(head)) * np.dtype(_IDX_DTYPES[head[2]]).itemsize


def _shape(head: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(head[3]))


def _wrong_size(path: Path, size: int, shape: tuple[int, ...], expected: int) -> DataError:
    return DataError(
        f"{path} has {size} bytes but its header {shape} needs {expected}; the file is truncated or corrupt"
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array of its declared dtype and shape."""
    path = Path(path)
    return parse_idx(open_bytes(path), path)


def parse_idx(data: bytes | bytearray, path: Path) -> np.ndarray:
    """An IDX file's decompressed bytes as an array; ``path`` names the file in errors."""
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: only {len(data)} bytes")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0:
        raise DataError(
            f"{path} is not an IDX file: magic number starts with {data[:2].hex()}, expected 0000"
        )
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{path} has unknown IDX dtype code 0x{type_code:02x}")
    if ndim < 1:
        raise DataError(f"{path} declares {ndim} dimensions; IDX needs at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: header needs {header} bytes, file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise _wrong_size(path, len(data), shape, expected)
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))

"""The IDX format (LeCun's MNIST files): read any IDX file, raw or gzipped, into a NumPy array."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

# IDX type codes: code -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (by magic, not by name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is a corrupt gzip file ({exc}); delete it and download again") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array of its declared dtype and shape."""
    path = Path(path)
    return parse_idx(open_bytes(path), path)


def parse_idx(data: bytes, path: Path) -> np.ndarray:
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
        raise DataError(
            f"{path} has {len(data)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))

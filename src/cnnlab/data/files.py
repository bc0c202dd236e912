"""A dataset's files and their published checksums, and checking a file against them."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from cnnlab.data.idx import open_bytes
from cnnlab.errors import DataError


@dataclasses.dataclass(frozen=True)
class DataFile:
    name: str
    gz_md5: str  # the MD5 published for the file as the mirrors serve it
    # SHA-256 of the decompressed bytes, where known: Debian re-gzips Fashion-MNIST (another gzip
    # header, so another .gz MD5), and this lets `data verify` and every load accept both.
    raw_sha256: str | None = None
    # The published array's shape: a file of this shape must have the checksums above. A file of
    # another shape (a synthetic stand-in, a subset) has no known checksum; None: never checked.
    shape: tuple[int, ...] | None = None


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, spec: DataFile, dataset: str = "the dataset") -> tuple[bool, str]:
    """``(ok, how)``: the published MD5 of the file, or failing that its decompressed content's SHA-256."""
    if not path.is_file():
        return False, "missing"
    if md5_of(path) == spec.gz_md5:
        return True, "published MD5 matches"
    if spec.raw_sha256 is None:
        return False, f"MD5 mismatch: the file is corrupt or not {dataset}"
    try:
        content = open_bytes(path)
    except DataError as exc:
        return False, str(exc)
    if hashlib.sha256(content).hexdigest() == spec.raw_sha256:
        return True, "decompressed content matches (re-gzipped copy)"
    return False, f"checksum mismatch: the file is corrupt or not {dataset}"

"""Checksums on every load, paid once per file: the record of files whose content already matched.

Every load checks each file's size (its IDX header against its length) and, when the file has the
published shape, the SHA-256 of its content against the published one, so a corrupt or altered
copy of a dataset is refused before anything trains on it. The hash is the part of a load that
need not be repeated: a file that passed is recorded by its identity (resolved path, size, mtime,
ctime, inode, device), and a later load that finds the same identity skips the hash. Writing to the
file, copying or moving another over it, or touching it changes that identity, so it is hashed again.

The record is a small JSON file in the user cache (``$CNNLAB_CHECKSUM_CACHE`` puts it elsewhere;
``/dev/null`` turns it off). It is only a shortcut: a record that is missing or cannot be written
costs a hash, never a load. It is read only from a regular file of at most RECORD_LIMIT bytes (a FIFO
would block, ``/dev/zero`` would fill the memory), and written only where nothing stands yet or a
record stands: anything else at that path (``/dev/null``, a file of the user's, garbage) is left
alone, with a warning unless it is a device.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import fileio
from cnnlab.data.files import DataFile, md5_of
from cnnlab.data.idx import open_bytes, parse_idx
from cnnlab.errors import CnnlabError, DataError
from cnnlab.fileio import write_json

CACHE_VAR = "CNNLAB_CHECKSUM_CACHE"
_VERSION = 1  # a record of another version is ignored (everything is hashed once more)
# A file changed this recently is not recorded yet: a second write within the same timestamp tick
# (milliseconds on Linux, up to 2 s on FAT or some network filesystems) would keep its identity
# (git's "racily clean" index entries). It is simply hashed again at its next load.
SETTLED_NS = 2_000_000_000
_LABELS = {"sha256": "SHA-256", "md5": "MD5"}
# About 200 bytes a file: room for thousands of data directories.
RECORD_LIMIT = 4 * fileio.MIB


def record_path() -> Path:
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlab")) / "verified-files.json"


def content_sha256(content: bytes | bytearray) -> str:
    return hashlib.sha256(content).hexdigest()


class VerifiedFiles:
    """The files already verified, by resolved path: their identity and the checksum they matched.

    ``read`` each file, then ``save`` (in a ``finally``) to remember those that passed.
    """

    def __init__(self, path: Path | None = None):
        self.path = record_path() if path is None else path
        self.files, self.writable = _read_record(self.path)
        self.changed = False

    def read(self, path: Path, spec: DataFile, dataset: str = "fashion-mnist") -> np.ndarray:
        """The IDX file at ``path``; if it has ``spec``'s published shape, it must have its content too:
        the SHA-256 of its decompressed bytes where that is published, else the MD5 of the file.

        A file of another shape (a synthetic stand-in, a subset) has no known checksum: only its
        sizes are checked, by ``parse_idx`` and the caller.
        """
        # Taken before reading: were the file changed during the read, it would not match this any more.
        before = _identity(path)
        content = open_bytes(path)
        array = parse_idx(content, path)
        if array.shape != spec.shape:
            return array
        if spec.raw_sha256 is not None:
            self._require(path, before, "sha256", spec.raw_sha256, lambda: content_sha256(content), dataset)
        else:
            self._require(path, before, "md5", spec.gz_md5, lambda: md5_of(path), dataset)
        return array

    def require_md5(self, path: Path, md5: str, dataset: str) -> None:
        """Refuse ``path`` unless its MD5 is ``md5`` (hashed once per identity, as ``read``)."""
        self._require(path, _identity(path), "md5", md5, lambda: md5_of(path), dataset)

    def _require(
        self,
        path: Path,
        before: dict | None,
        kind: str,
        expected: str,
        digest: Callable[[], str],
        dataset: str,
    ) -> None:
        entry = None if before is None else {**before, kind: expected}
        key = str(path.resolve())
        if entry is not None and self.files.get(key) == entry:
            return
        if digest() != expected:
            raise DataError(
                f"{path} does not hold the published {dataset} content (its {_LABELS[kind]} differs): the "
                f"file is corrupt or altered; fetch it again with `cnnlab data download {dataset} "
                f"--data-dir {path.parent}` (`cnnlab data verify {dataset} --data-dir {path.parent}` checks "
                "them all)"
            )
        if entry is not None and _settled(entry):
            self.files[key] = entry
            self.changed = True

    def save(self) -> None:
        """Write the record if it gained a file; a failure means only a hash next time, never an error."""
        if not self.changed or not self.writable:
            return
        kept = {key: entry for key, entry in self.files.items() if os.path.exists(key)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"version": _VERSION, "files": kept})
        except (OSError, CnnlabError):
            pass
        self.changed = False


def _identity(path: Path) -> dict[str, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # reading it then fails with a DataError that says why
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,  # set by the kernel on every change; no tool can set it back
        "inode": st.st_ino,
        "device": st.st_dev,
    }


def _settled(identity: dict[str, Any]) -> bool:
    return time.time_ns() - max(identity["mtime_ns"], identity["ctime_ns"]) > SETTLED_NS


def _read_record(path: Path) -> tuple[dict[str, Any], bool]:
    """The record's files, and whether ``path`` may be written: it holds nothing yet, or a record."""
    try:
        saved = fileio.read_json(path, RECORD_LIMIT)
    except FileNotFoundError:
        return {}, True
    except (OSError, ValueError) as exc:
        why = str(exc.strerror) if isinstance(exc, OSError) else "it is not JSON"
        _leave_alone(path, why if why.startswith("it ") else f"it cannot be read ({why})")
        return {}, False
    if not (isinstance(saved, dict) and "version" in saved and isinstance(saved.get("files"), dict)):
        _leave_alone(path, "it holds other JSON")
        return {}, False
    if saved["version"] != _VERSION:  # a record of another version: written over, never read
        return {}, True
    return saved["files"], True


def _leave_alone(path: Path, why: str) -> None:
    """Say once that ``path`` is not a record (except for a device: ``/dev/null`` means no record)."""
    try:
        if stat.S_ISCHR(os.stat(path).st_mode):
            return
    except OSError:
        pass
    warnings.warn(
        f"{path} should hold cnnlab's record of verified data files, but {why}; it is left alone, and "
        f"each load hashes the data again (set ${CACHE_VAR} to another file, or to /dev/null for none)",
        stacklevel=3,
    )

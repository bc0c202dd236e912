"""Download Fashion-MNIST from the official mirrors: checksums, retries, progress, atomic rename.

A file is first written to ``<name>.part`` beside its destination, its MD5 checked against the
published one, and only then renamed into place, so a half-written or wrong file never sits
where a good one is expected.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from cnnlab.data.files import DEBIAN_DIR, FILES, DataFile, verify_file
from cnnlab.errors import DataError

MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
OFFLINE_HINT = (
    f"pass --data-dir DIR holding the four .gz files, or install Debian's package "
    f"(`sudo apt-get install dataset-fashion-mnist`, which puts them in {DEBIAN_DIR})"
)


def _fetch(url: str, part: Path, timeout: float, quiet: bool) -> str:
    """Stream ``url`` into ``part``; return the MD5 of what was written."""
    from tqdm import tqdm

    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=part.name.removesuffix(".part"),
            disable=True if quiet else None,
            leave=False,
        ) as bar:  # None: off when not a terminal
            received = 0
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def download_file(
    spec: DataFile,
    dest_dir: Path,
    *,
    mirrors=MIRRORS,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    quiet: bool = False,
) -> Path:
    """Fetch one file, trying each mirror ``retries`` times; raise DataError if none delivers."""
    target = dest_dir / spec.name
    part = dest_dir / (spec.name + ".part")
    problems = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + spec.name
        for attempt in range(1, retries + 1):
            try:
                md5 = _fetch(url, part, timeout, quiet)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                problems.append(f"{url}: {reason}")
                part.unlink(missing_ok=True)
                if isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500:
                    break  # a missing file does not appear on retry
                if attempt < retries:
                    time.sleep(backoff * attempt)
                continue
            if md5 != spec.gz_md5:
                part.unlink(missing_ok=True)
                problems.append(f"{url}: MD5 {md5} does not match the published {spec.gz_md5}")
                continue
            os.replace(part, target)
            return target
    raise DataError(
        f"could not download {spec.name} ({problems[-1] if problems else 'no mirrors'}); " + OFFLINE_HINT
    )


def download_all(dest_dir: str | os.PathLike, *, files=None, quiet: bool = False, **kwargs) -> Path:
    """Download every file not already present and verified in ``dest_dir``; return ``dest_dir``."""
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {dest_dir}: {exc.strerror}; pass --data-dir to a writable place"
        ) from None
    for spec in (files or FILES).values():
        if verify_file(dest_dir / spec.name, spec)[0]:
            continue
        if not quiet:
            print(f"downloading {spec.name} into {dest_dir}", flush=True)
        download_file(spec, dest_dir, quiet=quiet, **kwargs)
    return dest_dir

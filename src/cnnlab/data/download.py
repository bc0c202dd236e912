"""Download a dataset's files from its official mirrors, with pooch: checksums, retries, progress.

``pooch.retrieve`` streams a file into a temporary file beside its destination, checks its MD5
against the published one, and only then renames it into place (deleting it otherwise), so a
half-written or wrong file never sits where a good one is expected, and a file already there with
the right MD5 is not fetched again. Around it, this module tries the mirrors in order, retries each
with a growing pause (but not after an HTTP 4xx: a missing file does not appear on retry), and
turns the last problem into one line. pooch's own log messages stay off the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.data.files import DataFile, verify_file
from cnnlab.errors import DataError

if TYPE_CHECKING:
    import requests

OFFLINE_HINT = "pass --data-dir DIR holding the files"
CHUNK = 1 << 16  # bytes per read; pooch's default of 1 KiB flushes the file 30,000 times


def download_file(
    spec: DataFile,
    dest_dir: Path,
    *,
    mirrors: tuple[str, ...],
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    quiet: bool = False,
    offline_hint: str = OFFLINE_HINT,
) -> Path:
    """Fetch one file, trying each mirror ``retries`` times; raise DataError if none delivers."""
    import requests

    problems = []
    with _quiet_pooch():
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + spec.name
            for attempt in range(1, retries + 1):
                try:
                    return _retrieve(url, spec, Path(dest_dir), timeout, quiet)
                except requests.HTTPError as exc:
                    problems.append(f"{url}: {_http_reason(exc)}")
                    if exc.response is not None and 400 <= exc.response.status_code < 500:
                        break  # a missing file does not appear on retry
                # requests' other errors are OSErrors; pooch reports a wrong MD5 as a ValueError
                except (OSError, ValueError) as exc:
                    problems.append(f"{url}: {_reason(exc, spec, timeout)}")
                if attempt < retries:
                    time.sleep(backoff * attempt)
    raise DataError(
        f"could not download {spec.name} ({problems[-1] if problems else 'no mirrors'}); " + offline_hint
    )


def _http_reason(exc: requests.HTTPError) -> str:
    """``HTTP 404 Not Found``; an HTTPError raised without a response (requests allows it) says its own."""
    if exc.response is None:
        return str(exc)
    return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".rstrip()


def _retrieve(url: str, spec: DataFile, dest_dir: Path, timeout: float, quiet: bool) -> Path:
    import pooch

    progressbar = not quiet and sys.stderr.isatty()  # tqdm's bar on a terminal, nothing in a log
    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout, chunk_size=CHUNK)
    pooch.retrieve(url, f"md5:{spec.gz_md5}", fname=spec.name, path=dest_dir, downloader=downloader)
    return dest_dir / spec.name


def _reason(exc: Exception, spec: DataFile, timeout: float) -> str:
    """What went wrong, in a few words: requests nests urllib3's messages several deep."""
    import requests

    text = " ".join(str(exc).split())
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        short = re.search(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)", text)
        if short:
            received, missing = int(short[1]), int(short[2])
            return f"connection closed after {received} of {received + missing} bytes"
        return "connection closed before the whole file arrived"
    if isinstance(exc, requests.RequestException):
        errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)  # e.g. [Errno 111] Connection refused
        return errno[0] if errno else text
    got = re.search(r"but got ([0-9a-f]{32})", text)
    if isinstance(exc, ValueError) and got:
        return f"MD5 {got[1]} does not match the published {spec.gz_md5}"
    return text


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs each download at INFO through a handler of its own on stderr; errors only here."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_all(
    dest_dir: str | os.PathLike, files: dict[str, DataFile], *, quiet: bool = False, **kwargs
) -> Path:
    """Download every file not already present and verified in ``dest_dir``; return ``dest_dir``.
    ``kwargs`` go to ``download_file`` (mirrors, retries, timeout, offline_hint)."""
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {dest_dir}: {exc.strerror}; pass --data-dir to a writable place"
        ) from None
    for spec in files.values():
        if verify_file(dest_dir / spec.name, spec)[0]:
            continue
        if not quiet:
            print(f"downloading {spec.name} into {dest_dir}", flush=True)
        download_file(spec, dest_dir, quiet=quiet, **kwargs)
    return dest_dir

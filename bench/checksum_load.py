"""What checking the published checksums costs a load of Fashion-MNIST, with and without the record.

    .venv/bin/python bench/checksum_load.py --data-dir /usr/share/datasets/fashion-mnist

Three ways to load the four files, in alternating rounds in one process: sizes only (the reference:
the IDX reader and the size checks, as before checksums were checked on every load), the first
load of a file (its content hashed with SHA-256, the record written) and a later load (the file
found in the record, no hash). Each figure is the median of the rounds, with its ratio to the
reference. The record is a temporary file; the user's own is never touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cnnlab import data
from cnnlab.data import arrays, verified


def sizes_only(directory: Path) -> None:
    paths = {key: directory / spec.name for key, spec in data.FILES.items()}
    loaded = {key: data.read_idx(path) for key, path in paths.items()}
    arrays._check_pair(
        loaded["train_images"], loaded["train_labels"], paths["train_images"], paths["train_labels"]
    )
    arrays._check_pair(
        loaded["test_images"], loaded["test_labels"], paths["test_images"], paths["test_labels"]
    )
    arrays._check_roles(len(loaded["train_images"]), len(loaded["test_images"]), paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=data.DEBIAN_DIR)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp()) / "verified-files.json"
    os.environ[verified.CACHE_VAR] = str(record)

    def first() -> None:
        record.unlink(missing_ok=True)
        data.load_arrays(args.data_dir)

    ways = {"sizes only (reference)": lambda: sizes_only(args.data_dir), "first load": first}
    ways["later load"] = lambda: data.load_arrays(args.data_dir)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, load in ways.items():
            start = time.perf_counter()
            load()
            seconds[name].append(time.perf_counter() - start)
    reference = statistics.median(seconds["sizes only (reference)"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"{name:24} {median * 1000:7.1f} ms  {median / reference:5.2f}x")
    record.unlink(missing_ok=True)
    record.parent.rmdir()


if __name__ == "__main__":
    main()

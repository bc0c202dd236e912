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
from cnnlab.data import idx_datasets, verified
from cnnlab.data.dataset import LabelledImages

FASHION = data.FASHION_MNIST


def sizes_only(directory: Path) -> None:
    paths = {key: directory / spec.name for key, spec in FASHION.files.items()}
    loaded = {key: data.read_idx(path) for key, path in paths.items()}
    images = LabelledImages(
        loaded["train_images"][:, None],
        loaded["train_labels"].astype("int64"),
        loaded["test_images"][:, None],
        loaded["test_labels"].astype("int64"),
    )
    images.check(FASHION.dataset, str(directory))
    FASHION._check_roles(len(loaded["train_images"]), len(loaded["test_images"]), paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=idx_datasets.DEBIAN_DIR)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp()) / "verified-files.json"
    os.environ[verified.CACHE_VAR] = str(record)

    def first() -> None:
        record.unlink(missing_ok=True)
        FASHION.read(args.data_dir)

    ways = {"sizes only (reference)": lambda: sizes_only(args.data_dir), "first load": first}
    ways["later load"] = lambda: FASHION.read(args.data_dir)
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

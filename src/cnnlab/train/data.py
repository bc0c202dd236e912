"""The dataset in memory and split, ready for either backend to normalise.

The images stay uint8 here; each engine normalises them once, up front, into its own arrays
(``engine.to_native``): torch does it in a vectorised pass on the device, which is several
times faster than NumPy's first touch of a 170 MB float array and moves a quarter of the bytes
to a GPU. Batches are then slices of one array, so the hot loop does no per-sample Python work
(the notebook's DataLoader with per-sample transforms spent most of its epoch there).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab import data as fmnist


@dataclasses.dataclass
class Arrays:
    """uint8 images (N, 28, 28) and int64 labels (N,) for each part; engines normalise the images."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_split(train_size: int, valid_size: int, seed: int, data_dir=None, quiet: bool = False) -> Arrays:
    raw = fmnist.load_arrays(fmnist.ensure_data(data_dir, quiet=quiet))
    split = fmnist.split_indices(train_size, valid_size, seed, total=len(raw.train_images))
    labels = raw.train_labels.astype(np.int64)
    return Arrays(
        train_x=raw.train_images[split.train], train_y=labels[split.train],
        valid_x=raw.train_images[split.valid], valid_y=labels[split.valid],
        test_x=raw.test_images, test_y=raw.test_labels.astype(np.int64),
    )


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so resuming at
    any epoch, or sharding across ranks, sees exactly the order an uninterrupted run sees."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_slices(order: np.ndarray, batch_size: int):
    """Consecutive index batches of ``order``; the last one may be short (as DataLoader's default)."""
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]

"""The order of training batches: a pure function of (seed, epoch), so a resumed or sharded run
sees exactly the batches an uninterrupted one sees."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so resuming at
    any epoch, or sharding across ranks, sees exactly the order an uninterrupted run sees."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_slices(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive index batches of ``order``; the last one may be short (as DataLoader's default)."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]

"""The order of training batches: a pure function of (seed, epoch), so a resumed or sharded run
sees exactly the batches an uninterrupted one sees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    import torch

# An order of indices: a NumPy array, or the engine's copy of one (a tensor on the device for torch).
Order = Union[np.ndarray, "torch.Tensor"]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so resuming at
    any epoch, or sharding across ranks, sees exactly the order an uninterrupted run sees."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# Batch norm normalises each channel over the batch, and a batch of one sample has nothing to
# normalise over (torch refuses it): a last batch that small joins the one before it instead.
MIN_BATCH = 2


def batch_starts(n: int, batch_size: int, min_size: int = MIN_BATCH) -> list[int]:
    """Where each batch of ``n`` items begins: every ``batch_size``, except that a last batch
    shorter than ``min_size`` is merged into the one before it (when there is one)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < min_size:
        starts.pop()
    return starts


def batch_slices(order: Order, batch_size: int, min_size: int = MIN_BATCH) -> Iterator[Order]:
    """Consecutive index batches of ``order``; the last one may be short (as DataLoader's default),
    but not shorter than ``min_size``: then it is merged into the batch before it."""
    starts = batch_starts(len(order), batch_size, min_size)
    for start, end in zip(starts, [*starts[1:], len(order)]):
        yield order[start:end]


def global_batches(order: Order, batch_size: int, world_size: int = 1) -> Iterator[Order]:
    """An epoch's global batches (``batch_size`` per rank) under ``world_size`` ranks; the last one
    is big enough to give every rank ``MIN_BATCH`` samples."""
    return batch_slices(order, batch_size * world_size, MIN_BATCH * world_size)


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """How many steps ``global_batches`` makes of ``n`` training images."""
    return len(batch_starts(n, batch_size * world_size, MIN_BATCH * world_size))

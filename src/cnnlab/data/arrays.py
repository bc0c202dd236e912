"""A dataset's images split for training: seeded train and validation parts, the test set apart.

The images stay uint8 here; each engine normalises them once, up front, into its own arrays
(``engine.to_native``): torch does it in a vectorised pass on the device, which is several
times faster than NumPy's first touch of a large float array and moves a quarter of the bytes
to a GPU. Batches are then slices of one array, so the hot loop does no per-sample Python work
(the notebook's DataLoader with per-sample transforms spent most of its epoch there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

from cnnlab.data.dataset import LabelledImages
from cnnlab.errors import DataError


@dataclasses.dataclass(frozen=True)
class Split:
    """Index arrays into the training pool; the test set is kept apart."""

    train: np.ndarray
    valid: np.ndarray


def split_indices(train_size: int, valid_size: int, seed: int, total: int) -> Split:
    """A seeded random split of ``range(total)`` into disjoint train and validation indices.

    As in the notebook, images outside both parts are unused. The permutation depends on the
    seed alone, so runs with the same seed and sizes see the same images.
    """
    if train_size < 1 or valid_size < 0 or train_size + valid_size > total:
        raise DataError(
            f"train_size={train_size} + valid_size={valid_size} must fit in the {total} "
            "training images, with train_size >= 1"
        )
    order = np.random.default_rng(seed).permutation(total)
    return Split(
        train=np.sort(order[:train_size]), valid=np.sort(order[train_size : train_size + valid_size])
    )


# The type of the image fields: a uint8 NumPy array as split (``Arrays[np.ndarray]``), then the
# engine's own array once normalised (``with_images(engine.to_native)``): a NumPy array for the
# numpy backend, a torch tensor on the device for torch. Data knows nothing of torch, hence a TypeVar.
Images = TypeVar("Images")
Converted = TypeVar("Converted")


@dataclasses.dataclass
class Arrays(Generic[Images]):
    """Images (N, C, H, W) and int64 NumPy labels (N,) for each part: the train and validation
    parts of the training pool, and the test set."""

    train_x: Images
    train_y: np.ndarray
    valid_x: Images
    valid_y: np.ndarray
    test_x: Images
    test_y: np.ndarray

    def with_images(self, convert: Callable[[Images], Converted]) -> Arrays[Converted]:
        """The same parts with each part's images converted (the labels as they are)."""
        return Arrays(
            convert(self.train_x),
            self.train_y,
            convert(self.valid_x),
            self.valid_y,
            convert(self.test_x),
            self.test_y,
        )


def split_arrays(
    images: LabelledImages, train_size: int | None, valid_size: int, seed: int
) -> Arrays[np.ndarray]:
    """The seeded train and validation parts of the training pool (``train_size`` None: all the
    images the validation part leaves), and the test set."""
    total = len(images.train_labels)
    split = split_indices(total - valid_size if train_size is None else train_size, valid_size, seed, total)
    return Arrays(
        train_x=images.train_images[split.train],
        train_y=images.train_labels[split.train],
        valid_x=images.train_images[split.valid],
        valid_y=images.train_labels[split.valid],
        test_x=images.test_images,
        test_y=images.test_labels,
    )

"""A dataset's images split for training: seeded train and validation parts, the test set apart.

The images stay uint8 here; each engine normalises them once, up front, into its own arrays
(``engine.to_native``): torch does it in a vectorised pass on the device, which is several
times faster than NumPy's first touch of a large float array and moves a quarter of the bytes
to a GPU. Batches are then slices of one array, so the hot loop does no per-sample Python work
(the notebook's DataLoader with per-sample transforms spent most of its epoch there).
"""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass
class Arrays:
    """uint8 images (N, C, H, W) and int64 labels (N,) for each part; engines normalise the images
    into their own arrays (``to_native``), after which the image fields hold those."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def split_arrays(images: LabelledImages, train_size: int | None, valid_size: int, seed: int) -> Arrays:
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

"""The dataset in memory: the four files read and checked, seeded splits, normalisation.

The images stay uint8 here; each engine normalises them once, up front, into its own arrays
(``engine.to_native``): torch does it in a vectorised pass on the device, which is several
times faster than NumPy's first touch of a 170 MB float array and moves a quarter of the bytes
to a GPU. Batches are then slices of one array, so the hot loop does no per-sample Python work
(the notebook's DataLoader with per-sample transforms spent most of its epoch there).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from cnnlab.data.files import CLASS_NAMES, FILES, MEAN, NUM_CLASSES, PIXEL_MAX, STD, TEST_TOTAL, TRAIN_TOTAL
from cnnlab.data.location import ensure_data
from cnnlab.data.verified import VerifiedFiles
from cnnlab.errors import DataError


def _check_pair(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(
            f"{images_path} holds {images.dtype} images of shape {images.shape}; "
            "expected uint8 of shape (N, 28, 28)"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{labels_path} holds {labels.dtype} labels of shape {labels.shape}; expected uint8 (N,)"
        )
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(
            f"{labels_path} has label {int(labels.max())}; labels must be in 0..{NUM_CLASSES - 1}"
        )


@dataclasses.dataclass(frozen=True)
class FashionMNIST:
    """The raw dataset: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path

    def _repr_html_(self) -> str:
        from cnnlab.data.display import dataset_html

        splits = {
            "train": (self.train_images, self.train_labels),
            "test": (self.test_images, self.test_labels),
        }
        return dataset_html("Fashion-MNIST", CLASS_NAMES, splits, str(self.directory))

    def __repr__(self) -> str:
        return (
            f"FashionMNIST(train_images {self.train_images.shape}, test_images {self.test_images.shape}, "
            f"from {str(self.directory)!r})"
        )


def load_arrays(directory: str | os.PathLike) -> FashionMNIST:
    """Read and validate all four files in ``directory``: sizes, checksums (``verified``), pairs, roles."""
    directory = Path(directory)
    paths = {key: directory / f.name for key, f in FILES.items()}
    verified = VerifiedFiles()
    try:
        arrays = {key: verified.read(paths[key], spec) for key, spec in FILES.items()}
    finally:
        verified.save()  # the files that passed before one failed need no hash next time
    _check_pair(arrays["train_images"], arrays["train_labels"], paths["train_images"], paths["train_labels"])
    _check_pair(arrays["test_images"], arrays["test_labels"], paths["test_images"], paths["test_labels"])
    _check_roles(len(arrays["train_images"]), len(arrays["test_images"]), paths)
    return FashionMNIST(directory=directory, **arrays)


def _check_roles(train: int, test: int, paths: dict[str, Path]) -> None:
    """Train and test files in their places: Fashion-MNIST has 60,000 training and 10,000 test images,
    and a copy of it (or a synthetic stand-in) never has a test set larger than its training set. Swapped
    files would otherwise train on the test set and report a "test accuracy" on the training set."""
    if test > train or (train, test) == (TEST_TOTAL, TRAIN_TOTAL):
        raise DataError(
            f"{paths['train_images'].name} holds {train} images and {paths['test_images'].name} {test}: "
            f"the training and test files look swapped; check them with `cnnlab data verify --data-dir "
            f"{paths['train_images'].parent}`"
        )


# Splits and normalisation


@dataclasses.dataclass(frozen=True)
class Split:
    """Index arrays into the 60,000 training images; the test set is kept apart."""

    train: np.ndarray
    valid: np.ndarray


def split_indices(train_size: int, valid_size: int, seed: int, total: int = TRAIN_TOTAL) -> Split:
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


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]: x/255, then (x - 0.5)/0.5 as the notebook."""
    # One table lookup per pixel instead of three passes over a large float array.
    levels = np.arange(256, dtype=np.float32)
    table = ((levels / np.float32(PIXEL_MAX)) - np.float32(MEAN)) / np.float32(STD)
    return table[images][:, None, :, :]  # (N, 1, H, W)


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
    raw = load_arrays(ensure_data(data_dir, quiet=quiet))
    split = split_indices(train_size, valid_size, seed, total=len(raw.train_images))
    labels = raw.train_labels.astype(np.int64)
    return Arrays(
        train_x=raw.train_images[split.train],
        train_y=labels[split.train],
        valid_x=raw.train_images[split.valid],
        valid_y=labels[split.valid],
        test_x=raw.test_images,
        test_y=raw.test_labels.astype(np.int64),
    )

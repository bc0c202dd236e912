"""The datasets by name, and a dataset opened and read as a run asks for it.

``--dataset`` takes a registry name (``cnnlab data list``) or a folder of images. Every source
answers the same questions (``Source``): what the dataset is (``describe``), where its files are
and how to fetch, check and read them. ``open_dataset`` adds the run's ``--image-size`` and
``--color``; ``load_dataset`` reads the images, converts them and computes the normalisation a
dataset does not publish.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Protocol

from cnnlab.data.cifar import CIFAR10
from cnnlab.data.conform import conform_images, conformed
from cnnlab.data.dataset import Dataset, LabelledImages, channel_statistics
from cnnlab.data.digits import DIGITS
from cnnlab.data.folder import FolderSource
from cnnlab.data.idx_datasets import FASHION_MNIST, KMNIST, MNIST
from cnnlab.errors import DataError

DEFAULT = "fashion-mnist"


class Source(Protocol):
    @property
    def name(self) -> str: ...

    def describe(self) -> Dataset: ...

    def locate(self, data_dir=None) -> tuple[Path | None, str]: ...

    def ensure(self, data_dir=None, quiet: bool = False) -> Path | None: ...

    def verify(self, directory) -> list[tuple[str, bool, str]]: ...

    def read(self, directory) -> LabelledImages: ...


BUILT_IN: dict[str, Source] = {s.name: s for s in (FASHION_MNIST, MNIST, KMNIST, CIFAR10, DIGITS)}


def is_folder_name(name: str) -> bool:
    """Whether ``--dataset`` names a folder rather than a registry entry."""
    return name not in BUILT_IN and (os.sep in name or name.startswith(".") or Path(name).is_dir())


def get_source(name: str, image_size: int | None = None, color: str | None = None) -> Source:
    """The source of a registry name or a folder; a misspelt name gets a suggestion."""
    if not isinstance(name, str) or not name:
        raise DataError(f"--dataset must be a dataset name or a folder. Received: {name!r}")
    if name in BUILT_IN:
        return BUILT_IN[name]
    if is_folder_name(name):
        return FolderSource(Path(name), image_size, color)
    close = difflib.get_close_matches(name, list(BUILT_IN), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise DataError(
        f"unknown dataset {name!r}; {hint}choose one of {', '.join(BUILT_IN)}, or give a folder of images "
        "with one subfolder per class"
    )


def open_dataset(name: str = DEFAULT, image_size: int | None = None, color: str | None = None) -> Dataset:
    """What the dataset is as the run will see it (its images not read): classes, shape, sizes."""
    source = get_source(name, image_size, color)
    return conformed(source.describe(), image_size, color)


def load_dataset(
    name: str = DEFAULT,
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    color: str | None = None,
    quiet: bool = False,
) -> tuple[Dataset, LabelledImages]:
    """The dataset and its images, converted to one size and colour mode, with its normalisation."""
    source = get_source(name, image_size, color)
    directory = source.ensure(data_dir, quiet=quiet)
    return read_dataset(source, directory, image_size, color)


def read_dataset(
    source: Source, directory: Path | None, image_size: int | None = None, color: str | None = None
) -> tuple[Dataset, LabelledImages]:
    """``source``'s images from ``directory`` as ``open_dataset`` describes them, with statistics."""
    dataset = conformed(source.describe(), image_size, color)
    images = source.read(directory)
    if images.classes is not None and len(images.classes) == dataset.num_classes:
        dataset = _with_classes(dataset, images.classes)
    shape = dataset.input_shape
    if images.train_images.shape[1:] != shape:
        images = _conform(images, shape)
    if dataset.mean is None or dataset.std is None:
        dataset = dataset.with_statistics(*channel_statistics(images.train_images))
    images.check(dataset, str(directory or source.name))
    return dataset, images


def _with_classes(dataset: Dataset, classes: tuple[str, ...]) -> Dataset:
    import dataclasses

    return dataclasses.replace(dataset, classes=tuple(classes))


def _conform(images: LabelledImages, shape: tuple[int, int, int]) -> LabelledImages:
    return LabelledImages(
        conform_images(images.train_images, shape),
        images.train_labels,
        conform_images(images.test_images, shape),
        images.test_labels,
        images.classes,
    )


def list_datasets() -> list[Dataset]:
    return [source.describe() for source in BUILT_IN.values()]

"""The datasets in LeCun's IDX format: Fashion-MNIST, MNIST and Kuzushiji-MNIST.

Each is four gzipped IDX files (training and test images and labels) of grayscale images in ten
classes, with published MD5s and mirrors; each file's expected shape comes from its Dataset's sizes
and input shape. They differ in their names, mirrors, checksums,
normalisation and whether a mirror image keeps its class (clothes do, digits and characters don't).

Sources: Fashion-MNIST, Xiao et al. 2017 (arXiv 1708.07747); MNIST, LeCun et al. 1998;
Kuzushiji-MNIST, Clanuwat et al. 2018 (arXiv 1812.01718). The checksums are those the datasets
publish, as torchvision lists them.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from cnnlab.data import location
from cnnlab.data.dataset import Dataset, LabelledImages
from cnnlab.data.files import DataFile, verify_file
from cnnlab.data.verified import VerifiedFiles
from cnnlab.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package
ROLES = ("train_images", "train_labels", "test_images", "test_labels")


NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclasses.dataclass(frozen=True)
class Checksums:
    """The four files' published checksums, in ``ROLES`` order (SHA-256 where one is published)."""

    md5s: tuple[str, str, str, str]
    sha256s: tuple[str | None, ...] = (None,) * 4


def _files(dataset: Dataset, checksums: Checksums) -> dict[str, DataFile]:
    """The four files, each with the shape the dataset's sizes and image shape give it."""
    train, test, (_, h, w) = dataset.train_total, dataset.test_total, dataset.input_shape
    shapes = ((train, h, w), (train,), (test, h, w), (test,))
    return {
        role: DataFile(name, md5, sha, shape)
        for role, name, md5, sha, shape in zip(ROLES, NAMES, checksums.md5s, checksums.sha256s, shapes)
    }


@dataclasses.dataclass(frozen=True)
class IdxSource:
    """Four IDX files: where they are, how to fetch, check and read them."""

    dataset: Dataset
    checksums: Checksums
    mirrors: tuple[str, ...]
    offline_hint: str = "pass --data-dir DIR holding the four .gz files"
    system_dir_names: tuple[str, ...] = ()  # attributes of this module, read when asked (tests move them)

    @property
    def name(self) -> str:
        return self.dataset.name

    @functools.cached_property
    def files(self) -> dict[str, DataFile]:
        return _files(self.dataset, self.checksums)

    @property
    def system_dirs(self) -> list[Path]:
        return [globals()[attribute] for attribute in self.system_dir_names]

    def describe(self) -> Dataset:
        return self.dataset

    def missing(self, directory: Path) -> list[str]:
        return [f.name for f in self.files.values() if not (directory / f.name).is_file()]

    def locate(self, data_dir=None) -> tuple[Path | None, str]:
        return location.locate(self, data_dir)

    def ensure(self, data_dir=None, quiet: bool = False) -> Path:
        return location.ensure(self, data_dir, quiet=quiet)

    def download(self, directory: Path, quiet: bool = False, **kwargs) -> Path:
        from cnnlab.data.download import download_all

        kwargs.setdefault("mirrors", self.mirrors)
        return download_all(directory, self.files, quiet=quiet, offline_hint=self.offline_hint, **kwargs)

    def verify(self, directory: Path) -> list[tuple[str, bool, str]]:
        return [(f.name, *verify_file(directory / f.name, f, self.name)) for f in self.files.values()]

    def read(self, directory: Path) -> LabelledImages:
        """All four files, each checked (sizes, checksums via ``verified``), as (N, 1, H, W) images."""
        paths = {role: directory / f.name for role, f in self.files.items()}
        verified = VerifiedFiles()
        try:
            arrays = {role: verified.read(paths[role], self.files[role], self.name) for role in ROLES}
        finally:
            verified.save()  # the files that passed before one failed need no hash next time
        expected = self.dataset.input_shape[1:]
        for part in ("train", "test"):
            images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
            if images.dtype != np.uint8 or images.shape[1:] != expected:
                raise DataError(
                    f"{paths[f'{part}_images']} holds {images.dtype} images of shape {images.shape}; "
                    f"expected uint8 of shape (N, {', '.join(map(str, expected))})"
                )
            if labels.ndim != 1 or labels.dtype != np.uint8:
                raise DataError(
                    f"{paths[f'{part}_labels']} holds {labels.dtype} labels of shape {labels.shape}; "
                    "expected uint8 (N,)"
                )
        self._check_roles(len(arrays["train_images"]), len(arrays["test_images"]), paths)
        labelled = LabelledImages(
            arrays["train_images"][:, None],
            arrays["train_labels"].astype(np.int64),
            arrays["test_images"][:, None],
            arrays["test_labels"].astype(np.int64),
        )
        labelled.check(self.dataset, str(directory))
        return labelled

    def _check_roles(self, train: int, test: int, paths: dict[str, Path]) -> None:
        """Train and test files in their places: a copy of the dataset (or a synthetic stand-in) never
        has a test set larger than its training set. Swapped files would otherwise train on the test
        set and report a "test accuracy" on the training set."""
        published = (self.dataset.test_total, self.dataset.train_total)
        if test > train or (train, test) == published:
            raise DataError(
                f"{paths['train_images'].name} holds {train} images and {paths['test_images'].name} {test}: "
                f"the training and test files look swapped; check them with `cnnlab data verify "
                f"{self.name} --data-dir {paths['train_images'].parent}`"
            )


FASHION_MNIST = IdxSource(
    Dataset(
        "fashion-mnist",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        (1, 28, 28),
        60_000,
        10_000,
        # The notebook's transforms, ToTensor then Normalize(0.5, 0.5), not the data's statistics:
        # cnnlab's Fashion-MNIST results were all measured with them.
        mean=(0.5,),
        std=(0.5,),
        flips=True,
        item_on_black=True,
        description="Zalando's article images (Xiao et al. 2017): 60,000 training and 10,000 test images",
        origin="the four IDX files",
    ),
    Checksums(
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    (
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    offline_hint=(
        "pass --data-dir DIR holding the four .gz files, or install Debian's package "
        f"(`sudo apt-get install dataset-fashion-mnist`, which puts them in {DEBIAN_DIR})"
    ),
    system_dir_names=("DEBIAN_DIR",),
)

MNIST = IdxSource(
    Dataset(
        "mnist",
        tuple(str(d) for d in range(10)),
        (1, 28, 28),
        60_000,
        10_000,
        mean=(0.1307,),  # the statistics everyone normalises MNIST with (PyTorch's examples)
        std=(0.3081,),
        flips=False,
        item_on_black=True,
        description="LeCun's handwritten digits: 60,000 training and 10,000 test images",
        origin="the four IDX files",
    ),
    Checksums(
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)

KMNIST = IdxSource(
    Dataset(
        "kmnist",
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        (1, 28, 28),
        60_000,
        10_000,
        flips=False,  # no published normalisation: computed from the training images
        item_on_black=True,
        description="Kuzushiji-MNIST, cursive Japanese characters (Clanuwat et al. 2018): 60,000 + 10,000",
        origin="the four IDX files",
    ),
    Checksums(
        (
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ),
    ),
    ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
)

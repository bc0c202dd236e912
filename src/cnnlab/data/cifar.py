"""CIFAR-10 in its python format: 60,000 colour images, 3x32x32, in ten classes (Krizhevsky 2009).

The data is five training batches and a test batch, each a pickled dict of 10,000 images as rows of
3,072 bytes (the red, green and blue planes of 32x32) and their labels, and ``batches.meta`` with
the class names. ``--data-dir DIR`` holds the folder ``cifar-10-batches-py/`` or the archive
``cifar-10-python.tar.gz`` as published, as torchvision's ``root`` does; the archive is read in
place, never unpacked.

The batches are pickles, and unpickling runs whatever a pickle names. ``_BatchUnpickler`` lets a
batch name nothing but NumPy's array and dtype, so a hostile file cannot run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from cnnlab.data import location
from cnnlab.data.dataset import Dataset, LabelledImages
from cnnlab.data.files import DataFile, md5_of
from cnnlab.errors import DataError

FOLDER = "cifar-10-batches-py"
ARCHIVE = DataFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
# The MD5 of each file as the archive holds it (torchvision lists the same).
MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
PUBLISHED_BATCH = 10_000  # images per published batch: a batch of this size must have its MD5
SHAPE = (3, 32, 32)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's dicts of lists, bytes and NumPy arrays, and refuses to build anything else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2: encode(text, "latin1")
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"a CIFAR batch may not name {module}.{name}")
        return super().find_class(module, name)


def _unpickle(content: bytes, where: str) -> dict:
    try:
        value = _BatchUnpickler(io.BytesIO(content), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle raises anything from EOFError to TypeError
        raise DataError(f"{where} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where} is not a CIFAR-10 python batch (it holds a {type(value).__name__})")
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in value.items()}


def _batch(content: bytes, where: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), int64 labels (N,)) from one batch file's bytes."""
    batch = _unpickle(content, where)
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{where} is not a CIFAR-10 python batch (no usable data and labels: {exc})"
        ) from None
    if data.ndim != 2 or data.shape[1] != int(np.prod(SHAPE)) or labels.shape != (len(data),):
        raise DataError(
            f"{where} holds data {data.shape} and labels {labels.shape}; expected (N, 3072) and (N,)"
        )
    if len(data) == PUBLISHED_BATCH and hashlib.md5(content).hexdigest() != MD5[name]:
        raise DataError(
            f"{where} does not hold the published CIFAR-10 content (its MD5 differs): the file is corrupt "
            "or altered; fetch it again with `cnnlab data download cifar10`"
        )
    return data.reshape(-1, *SHAPE), labels  # rows are the red, green, blue planes in turn


class _Members:
    """The batch files, from the folder or straight out of the archive."""

    def __init__(self, directory: Path):
        folder = directory / FOLDER if (directory / FOLDER).is_dir() else directory
        self.folder = folder if all((folder / name).is_file() for name in MD5) else None
        self.archive = directory / ARCHIVE.name

    def read_all(self) -> dict[str, tuple[bytes, str]]:
        if self.folder is not None:
            return {name: (self._file(self.folder / name), str(self.folder / name)) for name in MD5}
        try:
            with tarfile.open(self.archive, "r:gz") as tar:
                return {name: (self._member(tar, name), f"{self.archive}:{FOLDER}/{name}") for name in MD5}
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise DataError(f"{self.archive} is not a readable .tar.gz ({exc}); download it again") from None

    @staticmethod
    def _file(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None

    def _member(self, tar: tarfile.TarFile, name: str) -> bytes:
        member = tar.extractfile(f"{FOLDER}/{name}") if f"{FOLDER}/{name}" in tar.getnames() else None
        if member is None:
            raise DataError(f"{self.archive} lacks {FOLDER}/{name}; download it again")
        return member.read()


@dataclasses.dataclass(frozen=True)
class CifarSource:
    dataset: Dataset
    mirrors: tuple[str, ...] = ("https://www.cs.toronto.edu/~kriz/",)
    system_dirs: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.dataset.name

    def describe(self) -> Dataset:
        return self.dataset

    def missing(self, directory: Path) -> list[str]:
        members = _Members(directory)
        return (
            []
            if members.folder is not None or members.archive.is_file()
            else [f"{FOLDER}/ or {ARCHIVE.name}"]
        )

    def locate(self, data_dir=None) -> tuple[Path | None, str]:
        return location.locate(self, data_dir)

    def ensure(self, data_dir=None, quiet: bool = False) -> Path:
        return location.ensure(self, data_dir, quiet=quiet)

    def download(self, directory: Path, quiet: bool = False, **kwargs) -> Path:
        from cnnlab.data.download import download_all

        kwargs.setdefault("mirrors", self.mirrors)
        hint = f"pass --data-dir DIR holding {FOLDER}/ or {ARCHIVE.name}"
        return download_all(directory, {"archive": ARCHIVE}, quiet=quiet, offline_hint=hint, **kwargs)

    def verify(self, directory: Path) -> list[tuple[str, bool, str]]:
        members = _Members(directory)
        if members.folder is None:
            ok = members.archive.is_file() and md5_of(members.archive) == ARCHIVE.gz_md5
            return [
                (ARCHIVE.name, ok, "published MD5 matches" if ok else "MD5 mismatch: corrupt or not CIFAR-10")
            ]
        checks = []
        for name, md5 in MD5.items():
            ok = md5_of(members.folder / name) == md5
            checks.append((f"{FOLDER}/{name}", ok, "published MD5 matches" if ok else "MD5 mismatch"))
        return checks

    def read(self, directory: Path) -> LabelledImages:
        contents = _Members(directory).read_all()
        meta = _unpickle(*contents["batches.meta"])
        names = meta.get("label_names")
        if not isinstance(names, list) or len(names) < 2:
            raise DataError(f"{contents['batches.meta'][1]} has no list of label_names")
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        train = [_batch(*contents[name], name) for name in TRAIN_BATCHES]
        test_images, test_labels = _batch(*contents["test_batch"], "test_batch")
        images = LabelledImages(
            np.concatenate([b[0] for b in train]),
            np.concatenate([b[1] for b in train]),
            test_images,
            test_labels,
            classes=classes,
        )
        images.check(dataclasses.replace(self.dataset, classes=classes), str(directory))
        return images


CIFAR10 = CifarSource(
    Dataset(
        "cifar10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        SHAPE,
        50_000,
        10_000,
        # The training images' per-channel statistics (mean and standard deviation of pixel / 255).
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        flips=True,
        description="Krizhevsky's tiny colour photos (2009): 50,000 training and 10,000 test images",
        origin=f"{FOLDER}/ or {ARCHIVE.name}",
    )
)

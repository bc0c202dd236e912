"""Fashion-MNIST: the IDX reader, where the files live, verified download, seeded splits.

The files are the four gzipped IDX files published by Zalando Research (Xiao et al. 2017,
arXiv 1708.07747). This module needs NumPy only; ``cnnlab.train.data`` turns the arrays
into tensors.

Where the data is looked for, in order (the first that holds all four files wins):
  1. ``--data-dir`` (``data_dir`` argument)
  2. the environment variable ``CNNLAB_DATA_DIR``
  3. the user cache directory (``platformdirs.user_cache_dir("cnnlab")/fashion-mnist``)
  4. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package)
An explicit directory (1 or 2) that lacks the files is an error rather than silently
skipped, since the user asked for it by name.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
TRAIN_TOTAL = 60_000
TEST_TOTAL = 10_000
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "CNNLAB_DATA_DIR"
# The notebook's transforms: ToTensor (x/255) then Normalize(0.5, 0.5). Every backend normalises
# with these, in float32 and in this order, so all of them see bit-identical inputs.
PIXEL_MAX, MEAN, STD = 255.0, 0.5, 0.5


@dataclasses.dataclass(frozen=True)
class DataFile:
    name: str
    gz_md5: str  # the MD5 the Fashion-MNIST README publishes for the .gz as served by the mirrors
    # SHA-256 of the decompressed bytes: Debian re-gzips the same files (different gzip header,
    # so a different .gz MD5), and this lets `data verify` accept both.
    raw_sha256: str


FILES = {
    "train_images": DataFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                             "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": DataFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
                             "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": DataFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": DataFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
                            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ---------------------------------------------------------------------------------------------
# Reading


def _open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (by magic, not by name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is a corrupt gzip file ({exc}); delete it and download again") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array of its declared dtype and shape."""
    path = Path(path)
    data = _open_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: only {len(data)} bytes")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0:
        raise DataError(f"{path} is not an IDX file: magic number starts with {data[:2].hex()}, expected 0000")
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{path} has unknown IDX dtype code 0x{type_code:02x}")
    if ndim < 1:
        raise DataError(f"{path} declares {ndim} dimensions; IDX needs at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: header needs {header} bytes, file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} has {len(data)} bytes but its header {shape} needs {expected}; "
                        "the file is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _check_pair(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{images_path} holds {images.dtype} images of shape {images.shape}; "
                        "expected uint8 of shape (N, 28, 28)")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path} holds {labels.dtype} labels of shape {labels.shape}; expected uint8 (N,)")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{labels_path} has label {int(labels.max())}; labels must be in 0..{NUM_CLASSES - 1}")


@dataclasses.dataclass(frozen=True)
class FashionMNIST:
    """The raw dataset: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def load_arrays(directory: str | os.PathLike) -> FashionMNIST:
    """Read and validate all four files in ``directory``."""
    directory = Path(directory)
    paths = {key: directory / f.name for key, f in FILES.items()}
    arrays = {key: read_idx(p) for key, p in paths.items()}
    _check_pair(arrays["train_images"], arrays["train_labels"], paths["train_images"], paths["train_labels"])
    _check_pair(arrays["test_images"], arrays["test_labels"], paths["test_images"], paths["test_labels"])
    return FashionMNIST(directory=directory, **arrays)


# ---------------------------------------------------------------------------------------------
# Where the data is


def user_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlab")) / "fashion-mnist"


def has_all_files(directory: Path) -> bool:
    return all((directory / f.name).is_file() for f in FILES.values())


def locate(data_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Where the data is and why: ``(directory or None, reason)``. Reads no file contents."""
    if data_dir is not None:
        return _explicit(Path(data_dir), "--data-dir")
    if os.environ.get(ENV_VAR):
        return _explicit(Path(os.environ[ENV_VAR]), f"${ENV_VAR}")
    cache = user_cache_dir()
    if has_all_files(cache):
        return cache, f"the user cache directory {cache}"
    if has_all_files(DEBIAN_DIR):
        return DEBIAN_DIR, "Debian's dataset-fashion-mnist package"
    return None, (f"not found in the user cache ({cache}) nor in {DEBIAN_DIR}")


def _explicit(directory: Path, source: str) -> tuple[Path, str]:
    if not has_all_files(directory):
        missing = [f.name for f in FILES.values() if not (directory / f.name).is_file()]
        raise DataError(f"{source} {directory} lacks {', '.join(missing)}; run "
                        f"`cnnlab data download --data-dir {directory}` or point {source} elsewhere")
    return directory, f"given by {source}"


def ensure_data(data_dir: str | os.PathLike | None = None, *, download: bool = True, quiet: bool = False) -> Path:
    """The directory to read from; downloads into the user cache when nothing is found."""
    directory, reason = locate(data_dir)
    if directory is not None:
        return directory
    if not download:
        raise DataError(f"Fashion-MNIST is {reason}; pass --data-dir DIR, or run `cnnlab data download`")
    from cnnlab.download import download_all

    return download_all(user_cache_dir(), quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Checksums


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, spec: DataFile) -> tuple[bool, str]:
    """``(ok, how)``: the published .gz MD5, or failing that the decompressed content's SHA-256."""
    if not path.is_file():
        return False, "missing"
    if md5_of(path) == spec.gz_md5:
        return True, "published MD5 of the .gz matches"
    try:
        content = _open_bytes(path)
    except DataError as exc:
        return False, str(exc)
    if hashlib.sha256(content).hexdigest() == spec.raw_sha256:
        return True, "decompressed content matches (re-gzipped copy)"
    return False, "checksum mismatch: the file is corrupt or not Fashion-MNIST"


# ---------------------------------------------------------------------------------------------
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
        raise DataError(f"train_size={train_size} + valid_size={valid_size} must fit in the {total} "
                        "training images, with train_size >= 1")
    order = np.random.default_rng(seed).permutation(total)
    return Split(train=np.sort(order[:train_size]), valid=np.sort(order[train_size:train_size + valid_size]))


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]: x/255, then (x - 0.5)/0.5 as the notebook."""
    # One table lookup per pixel instead of three passes over a large float array.
    levels = np.arange(256, dtype=np.float32)
    table = ((levels / np.float32(PIXEL_MAX)) - np.float32(MEAN)) / np.float32(STD)
    return table[images][:, None, :, :]  # (N, 1, H, W)

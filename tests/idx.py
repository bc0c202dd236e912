"""Writing IDX files and a small synthetic, learnable Fashion-MNIST look-alike for tests."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from cnnlab.data import FILES, DataFile

_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    dtype = array.dtype if array.dtype.itemsize == 1 else array.dtype.newbyteorder(">")
    header = bytes([0, 0, _CODES[np.dtype(dtype)], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class k is a bright bar in row band k over noise: easy to learn, cheap to make."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for k in range(10):
        rows = slice(2 + 2 * k, 4 + 2 * k)
        images[labels == k, rows, 4:24] = 230
    return images


def write_synthetic_dataset(
    directory: Path, n_train: int = 600, n_test: int = 200, seed: int = 0
) -> dict[str, DataFile]:
    """Write the four files into ``directory``; return DataFile specs whose checksums and shapes match
    them (put them in ``data.FILES`` to make the files "published")."""
    import hashlib

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    train_labels = (np.arange(n_train) % 10).astype(np.uint8)
    test_labels = (np.arange(n_test) % 10).astype(np.uint8)
    arrays = {
        "train_images": synthetic_images(train_labels, rng),
        "train_labels": train_labels,
        "test_images": synthetic_images(test_labels, rng),
        "test_labels": test_labels,
    }
    specs = {}
    for key, array in arrays.items():
        path = write_idx(directory / FILES[key].name, array)
        content = gzip.decompress(path.read_bytes())
        specs[key] = DataFile(
            FILES[key].name,
            hashlib.md5(path.read_bytes()).hexdigest(),
            hashlib.sha256(content).hexdigest(),
            array.shape,
        )
    return specs


def corrupt_one_byte(path, keep_mtime=False):
    """Flip the content's last bit: the same size, the same IDX header, another checksum."""
    before = path.stat()
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[-1] ^= 1
    path.write_bytes(gzip.compress(bytes(content), mtime=0))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

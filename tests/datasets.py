"""Small files in the exact formats of the datasets cnnlab cannot download here: CIFAR-10's python
batches and archive, and folders of images; learnable, so a few steps of training show it."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def colour_images(labels: np.ndarray, rng: np.random.Generator, side: int = 32) -> np.ndarray:
    """uint8 (N, 3, side, side): class k is a bright band in one colour channel at row band k, over noise."""
    images = rng.integers(0, 60, size=(len(labels), 3, side, side), dtype=np.uint8)
    band = max(1, side // 12)
    for k in range(int(labels.max()) + 1 if len(labels) else 0):
        rows = slice(band * k % side, band * k % side + band)
        images[labels == k, k % 3, rows, 2 : side - 2] = 230
    return images


def cifar_batch(images: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """One batch as CIFAR-10 pickles it: a dict with bytes keys, data (N, 3072) uint8, labels a list."""
    batch = {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), -1),
        b"filenames": [f"{i}.png".encode() for i in range(len(images))],
    }
    return pickle.dumps(batch, protocol=2)


def cifar_files(per_batch: int = 40, test: int = 60, seed: int = 0) -> dict[str, bytes]:
    """The seven files of cifar-10-batches-py, small: five training batches, the test batch, the meta."""
    rng = np.random.default_rng(seed)
    files = {}
    for i in range(1, 6):
        labels = np.arange(per_batch) % 10
        files[f"data_batch_{i}"] = cifar_batch(colour_images(labels, rng), labels, f"training batch {i} of 5")
    labels = np.arange(test) % 10
    files["test_batch"] = cifar_batch(colour_images(labels, rng), labels, "testing batch 1 of 1")
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR_CLASSES]}
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    return files


def write_cifar_folder(root: Path, **kwargs) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in cifar_files(**kwargs).items():
        (folder / name).write_bytes(content)
    return root


def cifar_archive_bytes(**kwargs) -> bytes:
    """cifar-10-python.tar.gz as published: the folder cifar-10-batches-py/ inside a gzipped tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in cifar_files(**kwargs).items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_cifar_archive(root: Path, **kwargs) -> tuple[Path, str]:
    """The archive in ``root``; returns its path and MD5."""
    root.mkdir(parents=True, exist_ok=True)
    data = cifar_archive_bytes(**kwargs)
    path = root / "cifar-10-python.tar.gz"
    path.write_bytes(data)
    return path, hashlib.md5(data).hexdigest()


def write_image_folder(
    root: Path,
    classes=("circle", "square", "triangle"),
    per_class: int = 12,
    size: tuple[int, int] = (16, 16),
    mode: str = "RGB",
    seed: int = 0,
    split: bool = False,
    suffix: str = ".png",
) -> Path:
    """A folder of images, one subfolder per class (under train/ and test/ with ``split``): class k is
    a bright band at row band k, in colour k % 3 for RGB images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    parts = [("train", per_class), ("test", max(2, per_class // 3))] if split else [("", per_class)]
    for part, count in parts:
        for k, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            labels = np.full(count, k)
            images = colour_images(labels, rng, side=max(width, height))[:, :, :height, :width]
            for i, image in enumerate(images):
                array = image.transpose(1, 2, 0) if mode == "RGB" else image[k % 3]
                Image.fromarray(np.ascontiguousarray(array)).convert(mode).save(
                    folder / f"{name}-{i:03d}{suffix}"
                )
    return root


def fashion_normalize(images: np.ndarray) -> np.ndarray:
    """Fashion-MNIST images, (N, 28, 28) or (N, 1, 28, 28) uint8, as its runs' models take them."""
    from cnnlab.data import FASHION_MNIST

    images = np.asarray(images)
    return FASHION_MNIST.dataset.normalize(images.reshape(len(images), 1, *images.shape[-2:]))


def fashion_background() -> float:
    """A black pixel of Fashion-MNIST, normalised: what an occluding patch holds."""
    from cnnlab.data import FASHION_MNIST

    return FASHION_MNIST.dataset.background()[0]


def to_fashion_mnist(pixels, invert=None):
    """A photo prepared as a Fashion-MNIST run takes it (``cnnlab.data.images.prepare``), its
    ``image`` the single (28, 28) channel."""
    import dataclasses

    from cnnlab.data.idx_datasets import FASHION_MNIST
    from cnnlab.data.images import prepare

    prepared = prepare(pixels, FASHION_MNIST.dataset, invert)
    return dataclasses.replace(prepared, image=prepared.image[0])

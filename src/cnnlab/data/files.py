"""The Fashion-MNIST files: class names, sizes, the four files and their published checksums.

The files are the four gzipped IDX files published by Zalando Research (Xiao et al. 2017,
arXiv 1708.07747).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from cnnlab.data.idx import open_bytes
from cnnlab.errors import DataError

CLASS_NAMES = (
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
)
NUM_CLASSES = len(CLASS_NAMES)
TRAIN_TOTAL = 60_000
TEST_TOTAL = 10_000
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "CNNLAB_DATA_DIR"
# The notebook's transforms: ToTensor (x/255) then Normalize(0.5, 0.5). Every backend normalises
# with these, in float32 and in this order, so all of them see bit-identical inputs.
PIXEL_MAX, MEAN, STD = 255.0, 0.5, 0.5
BACKGROUND = (0.0 - MEAN) / STD  # a black pixel after normalisation: what shifts bring in at the border


@dataclasses.dataclass(frozen=True)
class DataFile:
    name: str
    gz_md5: str  # the MD5 the Fashion-MNIST README publishes for the .gz as served by the mirrors
    # SHA-256 of the decompressed bytes: Debian re-gzips the same files (different gzip header,
    # so a different .gz MD5), and this lets `data verify` accept both.
    raw_sha256: str
    # The published array's shape: a file of this shape must have the checksum above. A file of
    # another shape (a synthetic stand-in, a subset) has no known checksum; None: never checked.
    shape: tuple[int, ...] | None = None


FILES = {
    "train_images": DataFile(
        "train-images-idx3-ubyte.gz",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        (TRAIN_TOTAL, 28, 28),
    ),
    "train_labels": DataFile(
        "train-labels-idx1-ubyte.gz",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        (TRAIN_TOTAL,),
    ),
    "test_images": DataFile(
        "t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        (TEST_TOTAL, 28, 28),
    ),
    "test_labels": DataFile(
        "t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        (TEST_TOTAL,),
    ),
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian dtype


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
        content = open_bytes(path)
    except DataError as exc:
        return False, str(exc)
    if hashlib.sha256(content).hexdigest() == spec.raw_sha256:
        return True, "decompressed content matches (re-gzipped copy)"
    return False, "checksum mismatch: the file is corrupt or not Fashion-MNIST"

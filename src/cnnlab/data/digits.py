"""scikit-learn's handwritten digits: 1,797 8x8 images, bundled with scikit-learn, no download.

The UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak 1998), each image
an 8x8 grid of counts from 0 to 16. Here they become uint8 pixels (count * 255 / 16), and a seeded,
stratified fifth of each class is held out as the test set, the same every time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.data.dataset import Dataset, LabelledImages

TOTAL, TEST = 1_797, 360  # a fifth of 1,797, rounded up as scikit-learn's split rounds the test part
SPLIT_SEED = 0  # the test set is the same for every run, whatever --seed


@dataclasses.dataclass(frozen=True)
class DigitsSource:
    dataset: Dataset

    @property
    def name(self) -> str:
        return self.dataset.name

    def describe(self) -> Dataset:
        return self.dataset

    def locate(self, data_dir=None) -> tuple[Path | None, str]:
        return None, "bundled with scikit-learn (no files to find)"

    def ensure(self, data_dir=None, quiet: bool = False) -> Path | None:
        return None

    def verify(self, directory) -> list[tuple[str, bool, str]]:
        import sklearn

        return [("load_digits()", True, f"bundled with scikit-learn {sklearn.__version__}")]

    def read(self, directory=None) -> LabelledImages:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
        labels = digits.target.astype(np.int64)
        train_x, test_x, train_y, test_y = train_test_split(
            images, labels, test_size=TEST, stratify=labels, random_state=SPLIT_SEED
        )
        return LabelledImages(train_x, train_y, test_x, test_y)


DIGITS = DigitsSource(
    Dataset(
        "digits",
        tuple(str(d) for d in range(10)),
        (1, 8, 8),
        TOTAL - TEST,
        TEST,
        flips=False,  # no published normalisation: computed from the training images
        item_on_black=True,
        description="scikit-learn's 8x8 handwritten digits (UCI): 1,437 training and 360 test images",
        origin="scikit-learn's bundled copy",
    )
)

"""Tests on the real Fashion-MNIST, when it is installed (Debian's dataset-fashion-mnist)."""

import json

import numpy as np
import pytest

from cnnlab import data
from cnnlab.cli import main
from cnnlab.errors import DataError
from tests.conftest import REAL_DATA, requires_real_data
from tests.idx import corrupt_one_byte

pytestmark = [requires_real_data, pytest.mark.realdata]


@pytest.fixture(scope="module")
def real():
    return data.FASHION_MNIST.read(REAL_DATA)


def test_sizes_and_checksums(real):
    assert real.train_images.shape == (60_000, 1, 28, 28) and real.test_images.shape == (10_000, 1, 28, 28)
    for spec in data.FILES.values():
        assert data.verify_file(REAL_DATA / spec.name, spec)[0], spec.name


def test_a_corrupt_copy_of_the_real_files_is_refused(tmp_path):
    import shutil

    for spec in data.FILES.values():
        shutil.copy(REAL_DATA / spec.name, tmp_path / spec.name)
    corrupt_one_byte(tmp_path / data.FILES["test_labels"].name)  # the last label: another valid class
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz does not hold the published"):
        data.FASHION_MNIST.read(tmp_path)


def test_labels_are_balanced(real):
    assert np.bincount(real.train_labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(real.test_labels, minlength=10).tolist() == [1000] * 10


def test_notebook_split_sizes_and_balance(real):
    split = data.split_indices(10_000, 1_000, seed=0, total=60_000)
    assert len(split.train) == 10_000 and len(split.valid) == 1_000
    counts = np.bincount(real.train_labels[split.train], minlength=10)
    assert counts.min() > 900 and counts.max() < 1100  # a random split stays close to balanced


def test_one_epoch_on_a_small_subset_learns_well_above_chance(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--train-size",
                "3000",
                "--valid-size",
                "500",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.6  # chance is 0.1

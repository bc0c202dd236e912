"""The training loop never makes the host wait for the device inside an epoch: cnnlab's own code
reads the loss and the correct count once, at the epoch's end (counted here on CPU, where the same
calls would be device syncs on a GPU)."""

import sys

import numpy as np
import pytest
import torch

from cnnlab.data import FASHION_MNIST
from cnnlab.data.arrays import Arrays
from cnnlab.training import loop
from cnnlab.training.config import resolve
from cnnlab.training.engine import make_engine

FASHION = FASHION_MNIST.dataset

SYNCING = ("item", "cpu", "tolist", "numpy", "__int__", "__float__", "__bool__")


@pytest.fixture
def sync_counter(monkeypatch):
    """Counts calls of each syncing Tensor method made from cnnlab's source files."""
    counts = {name: 0 for name in SYNCING}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "/cnnlab/" in caller and "/tests/" not in caller:
                counts[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in SYNCING:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    return counts


def small_arrays(n=96):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return Arrays(images, labels, images[:8], labels[:8], images[:8], labels[:8])


@pytest.mark.parametrize(
    "options",
    [{}, {"translate": 2, "hflip": True, "grad_clip": 1.0}, {"precision": "32", "ema": None}],
    ids=["default", "augmented", "fp32"],
)
def test_one_epoch_reads_the_device_once(sync_counter, options):
    config = resolve({"batch_size": 16, "device": "cpu", **options})
    engine = make_engine(config, 6, FASHION)
    data = small_arrays()
    data.train_x = engine.to_native(data.train_x)
    engine.start_epoch(1)
    metrics = loop.train_one_epoch(engine, data, np.random.default_rng(1).permutation(96), lambda n: None)
    assert sum(sync_counter.values()) == 1 and sync_counter["tolist"] == 1, sync_counter
    assert 0 <= metrics["train_accuracy"] <= 1 and np.isfinite(metrics["train_loss"])


def test_the_sums_read_at_the_end_equal_per_step_reads():
    """Summing on the device changes nothing: the epoch's loss and accuracy equal the per-step sums."""
    config = resolve({"batch_size": 16, "device": "cpu", "precision": "32"})
    first, second = make_engine(config, 6, FASHION), make_engine(config, 6, FASHION)
    data = small_arrays()
    x, y = first.to_native(data.train_x), first.to_native(data.train_y)
    order = np.random.default_rng(1).permutation(96)
    data.train_x = x
    metrics = loop.train_one_epoch(first, data, order, lambda n: None)
    loss, correct = 0.0, 0
    for start in range(0, 96, 16):
        idx = torch.from_numpy(order[start : start + 16])
        batch_loss, batch_correct = second.train_batch(x[idx], y[idx])
        loss, correct = loss + float(batch_loss), correct + int(batch_correct)
    assert metrics["train_loss"] == pytest.approx(loss / 96, rel=1e-12)
    assert metrics["train_accuracy"] == correct / 96

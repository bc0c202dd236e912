"""The notebook's own training loop against cnnlab's, same model, split, optimizer, batch, epochs.

    .venv/bin/python bench/notebook_loop.py --epochs 3

The notebook feeds torchvision's FashionMNIST through a DataLoader (per-sample PIL image ->
ToTensor -> Normalize, num_workers=2). torchvision is not installable beside our torch, so the
dataset here does exactly those per-sample steps with PIL and torch. Both loops run in this
process on the same machine; the ratio is what to quote, since absolute times drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cnnlab import data
from cnnlab.models import build_model
from cnnlab.training.config import resolve
from cnnlab.training.run import Session
from cnnlab.training.run import train as cnnlab_train


class PerSampleFashionMNIST(Dataset):
    """What torchvision.datasets.FashionMNIST + Compose([ToTensor(), Normalize((0.5,), (0.5,))])
    do per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i].numpy(), mode="L")  # as torchvision's __getitem__
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).unsqueeze(0).float().div(255)  # ToTensor
        return (x - 0.5) / 0.5, int(self.labels[i])  # Normalize((0.5,), (0.5,))


def notebook_loop(epochs: int, seed: int) -> tuple[float, float]:
    _, raw = data.load_dataset("fashion-mnist")
    raw = dataclasses.replace(raw, train_images=raw.train_images[:, 0], test_images=raw.test_images[:, 0])
    split = data.split_indices(10_000, 1_000, seed, total=len(raw.train_labels))
    train = PerSampleFashionMNIST(raw.train_images[split.train], raw.train_labels[split.train])
    valid = PerSampleFashionMNIST(raw.train_images[split.valid], raw.train_labels[split.valid])
    torch.manual_seed(seed)
    model = build_model("seed", (1, 28, 28), 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_loader = DataLoader(train, batch_size=512, shuffle=True, num_workers=2)
    valid_loader = DataLoader(valid, batch_size=512, shuffle=False, num_workers=2)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in valid_loader:
                correct += (model(x).argmax(1) == y).sum().item()
    return time.perf_counter() - start, correct / len(valid)


def cnnlab_loop(epochs: int, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve({"preset": "seed", "epochs": epochs, "seed": seed, "out": f"{tmp}/run"})
        result = cnnlab_train(config, Session(log=lambda m: None, quiet=True))
    return result.history[-1]["seconds"], result.history[-1]["valid_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    for r in range(args.repeats):
        nb_s, nb_acc = notebook_loop(args.epochs, seed=r)
        cl_s, cl_acc = cnnlab_loop(args.epochs, seed=r)
        ratios.append(nb_s / cl_s)
        print(
            f"repeat {r}: notebook loop {nb_s:6.1f} s (valid {nb_acc:.1%})   cnnlab loop {cl_s:6.1f} s "
            f"(valid {cl_acc:.1%}, data loading included)   notebook/cnnlab {nb_s / cl_s:.2f}x",
            flush=True,
        )
    print(
        f"median: cnnlab's loop is {statistics.median(ratios):.2f}x faster than the notebook's "
        f"({args.epochs} epochs of 10,000 images, batch 512, {torch.get_num_threads()} threads)"
    )


if __name__ == "__main__":
    main()

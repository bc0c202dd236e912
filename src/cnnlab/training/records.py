"""The dataset a run trained on, as its run directory records it (``dataset.json``)."""

from __future__ import annotations

from pathlib import Path

from cnnlab import fileio
from cnnlab.data.dataset import Dataset
from cnnlab.data.idx_datasets import FASHION_MNIST
from cnnlab.errors import DataError, RunDirError
from cnnlab.training import rundir


def save_dataset(run: Path, dataset: Dataset) -> None:
    fileio.write_json(run / rundir.DATASET, dataset.to_json())


def dataset_of_run(run: Path) -> Dataset:
    """The dataset a run trained on: its ``dataset.json``, or Fashion-MNIST for a run saved before
    cnnlab knew other datasets (it has none)."""
    saved = Path(run) / rundir.DATASET
    if not saved.is_file():
        return FASHION_MNIST.dataset
    try:
        dataset = Dataset.from_json(rundir.read_json(saved), str(saved))
    except DataError as exc:
        raise RunDirError(str(exc)) from None
    if dataset.mean is None or dataset.std is None:  # a run always knew them: it trained with them
        raise RunDirError(f"{saved} lacks the mean and std the run normalised its images with")
    return dataset

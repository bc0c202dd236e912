"""A trained run, loaded for looking at: its config, its torch model in eval mode, and the test images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError, option

__all__ = ["Trained", "load_run", "TestImages", "load_test_images"]


@dataclasses.dataclass
class Trained:
    run_dir: Path
    config: object  # cnnlab.training.config.TrainConfig
    model: object  # torch.nn.Module, in eval mode

    @property
    def title(self) -> str:
        return f"{self.config.model} ({self.run_dir.name})"


def load_run(run_dir: str | Path) -> Trained:
    """The run's model with the weights it reported its accuracy with (cnnlab.runs.loader decides: the best
    epoch's under early stopping, else the EMA average, else the last epoch's), on the CPU."""
    from cnnlab.runs import loader as runs

    loaded = runs.load_run(run_dir)
    return Trained(loaded.path, loaded.config, loaded.model)


@dataclasses.dataclass
class TestImages:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int (N,)

    def pick(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self.labels):
            raise ConfigError(
                f"{option('image')} must be in 0..{len(self.labels) - 1} (the test set's indices). "
                f"Received: {index}"
            )
        return self.images[index], int(self.labels[index])


def load_test_images(trained: Trained, data_dir: str | None = None) -> TestImages:
    """The test set the run was evaluated on (``data_dir`` overrides the run's own)."""
    from cnnlab import data

    raw = data.load_arrays(
        data.ensure_data(data_dir or data.recorded_or_search(trained.config.data_dir), quiet=True)
    )
    return TestImages(raw.test_images, raw.test_labels.astype(np.int64))


def as_input(images: np.ndarray):
    """uint8 (N, 28, 28) -> the normalised float32 tensor (N, 1, 28, 28) the model was trained on."""
    import torch

    from cnnlab.data import normalize

    return torch.from_numpy(normalize(images))

"""A trained run, loaded for looking at: its config, its torch model in eval mode, and the test images.

Kept small on purpose; a shared ``cnnlab.runs`` loader can replace ``load_run`` without
changing its callers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cnnlab import rundir
from cnnlab.errors import ConfigError, RunDirError

__all__ = ["Trained", "load_run", "TestImages", "load_test_images"]


@dataclasses.dataclass
class Trained:
    run_dir: Path
    config: object  # cnnlab.train.config.TrainConfig
    model: object  # torch.nn.Module, in eval mode

    @property
    def title(self) -> str:
        return f"{self.config.model} ({self.run_dir.name})"


def load_run(run_dir: str | Path) -> Trained:
    """The run's model with its final weights (checkpoint.pt's "model"), on the CPU."""
    import torch

    from cnnlab.models import build_model
    from cnnlab.train.config import resolve

    run = rundir.require_run_dir(run_dir)
    try:
        config = resolve({}, str(run / rundir.CONFIG))
    except ConfigError as exc:
        raise RunDirError(f"{run / rundir.CONFIG} is not a usable config ({exc})") from None
    checkpoint = run / rundir.CHECKPOINT
    if not checkpoint.is_file():
        raise RunDirError(f"{checkpoint} is missing; the run saved no trained weights")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
        model = build_model(config.model, "torch")
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    except Exception as exc:  # torch raises many types for a damaged or mismatched file
        raise RunDirError(f"{checkpoint} does not hold weights for model {config.model!r} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    return Trained(run, config, model.eval())


@dataclasses.dataclass
class TestImages:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int (N,)

    def pick(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self.labels):
            raise ConfigError(f"--image must be in 0..{len(self.labels) - 1} (the test set's indices). "
                              f"Received: {index}")
        return self.images[index], int(self.labels[index])


def load_test_images(trained: Trained, data_dir: str | None = None) -> TestImages:
    """The test set the run was evaluated on (``data_dir`` overrides the run's own)."""
    from cnnlab import data

    raw = data.load_arrays(data.ensure_data(data_dir or trained.config.data_dir, quiet=True))
    return TestImages(raw.test_images, raw.test_labels.astype(np.int64))


def as_input(images: np.ndarray):
    """uint8 (N, 28, 28) -> the normalised float32 tensor (N, 1, 28, 28) the model was trained on."""
    import torch

    from cnnlab.data import normalize

    return torch.from_numpy(normalize(images))

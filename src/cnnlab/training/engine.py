"""The interface between the training loop and the arithmetic: what an engine must provide.

The loop (``loop.py``), a whole run (``run.py``) and the lr range test (``lr_find.py``) use only
the members below, so the torch engine (``torch_engine.TorchEngine``) and cnnlab's from-scratch
engine (``numpy_engine.NumpyEngine``) are interchangeable; mypy checks that both satisfy it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Union

import numpy as np

from cnnlab.data.dataset import Dataset
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import SINGLE, World

if TYPE_CHECKING:
    import torch

    from cnnlab.training.numpy_engine import NumpyEngine
    from cnnlab.training.torch_engine import TorchEngine

# An engine's own array (``to_native``): a NumPy array for the numpy engine, a tensor on the device
# for torch. The loop only slices one and hands the slice back to the engine that made it.
Native = Union[np.ndarray, "torch.Tensor"]


class Engine(Protocol):
    config: TrainConfig  # the run's options; the loop reads batch_size, seed, epochs from it
    dataset: Dataset  # what the model takes (shape, classes) and how images are normalised
    backend: str  # "torch" or "numpy"
    precision: str  # the arithmetic actually used: "32", "bf16", "16-mixed"

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        ...

    def set_lr(self, lr: float) -> None:
        """Use ``lr`` for the next step, overriding the schedule (the lr range test sweeps it)."""
        ...

    def to_native(self, x: np.ndarray) -> Native:
        """The engine's own array for ``x``; uint8 images (N, C, H, W) come back normalised as float32."""
        ...

    def initialize(self, dataset: Dataset, train_images: np.ndarray) -> None:
        """Data-dependent set-up before the first step and before any ``to_native``: the dataset with
        its normalisation, and from the training images (uint8 (N, C, H, W)) --whiten's patch
        whitening of the first convolution."""
        ...

    def start_epoch(self, epoch: int) -> None:
        """Seed what the epoch draws (augmentation) from (seed, epoch), so a resume repeats it."""
        ...

    def train_batch(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One optimizer step on a native batch (images and labels); returns (summed loss over the
        batch, correct predictions) as the engine's own scalars, left on the device: reading them
        would make the host wait, so the loop sums them there and reads them once an epoch."""
        ...

    def to_host(self, values: list[Any]) -> list[float]:
        """The engine's scalars as Python floats, in one transfer."""
        ...

    def logits(self, x: Any) -> np.ndarray:
        """float32 logits (N, K) of the weights that are evaluated (the EMA average when kept)."""
        ...

    def weights(self) -> dict[str, np.ndarray]:
        """The evaluated weights as NumPy arrays, under torch's state_dict keys (for logging and pictures)."""
        ...

    def remember_best(self) -> None:
        """Keep a copy of the evaluated weights (early stopping's best epoch)."""
        ...

    def restore_best(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors, numbers and dicts (``torch.load(weights_only=True)``)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Where and how it computes, for environment.json (device, threads, precision)."""
        ...


def make_engine(config: TrainConfig, steps_per_epoch: int, dataset: Dataset, world: World = SINGLE) -> Engine:
    """The engine for ``config.backend``, built before the loop so the loop never branches on it;
    its model takes ``dataset``'s input shape and classes. The numpy engine trains in one process:
    ``run.join_world`` refuses it under torchrun."""
    if config.backend == "numpy":
        from cnnlab.training.numpy_engine import NumpyEngine

        return NumpyEngine(config, steps_per_epoch, dataset)
    from cnnlab.training.torch_engine import TorchEngine

    return TorchEngine(config, steps_per_epoch, dataset, world)


def _satisfies_engine(torch_engine: TorchEngine, numpy_engine: NumpyEngine) -> tuple[Engine, Engine]:
    """Never called: mypy checks here that both engines satisfy the protocol."""
    return torch_engine, numpy_engine

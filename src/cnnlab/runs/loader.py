"""A trained run, loaded back: the one way to load a finished (or unfinished) run.

``load_run`` gives its config, its dataset (``dataset.json``: classes, input shape, normalisation),
its history and its model in eval mode with the weights it reported; ``LoadedRun.images`` reads the
split it was scored on exactly as training chose it, and ``LoadedRun.probabilities`` prepares
images as training did and applies the run's test-time augmentation. ``evaluate``, ``report``,
``predict``, ``export``, ``show``, ``explore`` and the Python API all start here, so a missing,
corrupt or mismatched run directory gets the same one-line error everywhere.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.data.dataset import Dataset
from cnnlab.errors import ConfigError, DataError, RunDirError
from cnnlab.training import rundir

if TYPE_CHECKING:
    from cnnlab.training.config import TrainConfig

SPLITS = ("test", "valid")


@dataclasses.dataclass
class LoadedRun:
    path: Path
    config: TrainConfig
    dataset: Dataset
    model: Any  # torch.nn.Module, in eval mode on the CPU
    history: list[dict]
    summary: dict | None  # summary.json, or None while the run is unfinished

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.dataset.input_shape

    @property
    def title(self) -> str:
        return f"{self.config.model} ({self.path.name})"

    def images(self, split: str = "test", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The uint8 images (N, C, H, W) and labels of ``split`` ("test" or "valid"), chosen exactly as
        training chose them."""
        from cnnlab.data.arrays import split_indices

        if split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)}. Received: {split!r}")
        if split == "valid" and self.config.valid_size == 0:
            raise ConfigError(
                "--split valid: this run was trained with --valid-size 0, so it has no validation split"
            )
        data = self._data(data_dir)
        if split == "test":
            return data.test_images, data.test_labels
        total = len(data.train_labels)
        parts = split_indices(
            self.config.train_images(total), self.config.valid_size, self.config.seed, total
        )
        return data.train_images[parts.valid], data.train_labels[parts.valid]

    def test_set(self, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The test images and labels where cnnlab finds them, never downloading (a DataError
        says why there are none)."""
        data = self._data(data_dir, download=False)
        return data.test_images, data.test_labels

    def _data(self, data_dir: str | None, download: bool = True):
        key = str(data_dir)
        if key not in self._cache:
            self._cache[key] = load_data_of(self, data_dir, download)
        return self._cache[key]

    @functools.cached_property
    def _cache(self) -> dict:
        return {}

    def prepare(self, images: np.ndarray):
        """uint8 images (N, C, H, W) -> the normalised float32 tensor the model was trained on."""
        import torch

        return torch.from_numpy(self.dataset.normalize(images))

    def probabilities(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Softmax probabilities (N, K) for uint8 images (N, C, H, W), with the run's test-time
        augmentation (--tta, --tta-shift; ``cnnlab.models.class_probabilities``)."""
        import torch

        from cnnlab.models import class_probabilities

        fill, tta, shift = self.dataset.background(), self.config.tta, self.config.tta_shift
        with torch.inference_mode():
            batches = [
                class_probabilities(self.model, self.prepare(images[i : i + batch_size]), fill, tta, shift)
                for i in range(0, len(images), batch_size)
            ]
        return torch.cat(batches).numpy() if batches else np.zeros((0, self.dataset.num_classes), np.float32)

    def first_conv(self) -> tuple[str, np.ndarray] | None:
        """(the first Conv2d's name, as in state_dict keys; its weights (C_out, C_in, kH, kW)), or None
        for a model without one: the filters ``cnnlab report`` and ``cnnlab show filters`` draw."""
        from torch import nn

        for name, module in self.model.named_modules():
            if isinstance(module, nn.Conv2d):
                return name, module.weight.detach().cpu().numpy()
        return None


def load_data_of(run: LoadedRun, data_dir: str | None = None, download: bool = True):
    """The run's dataset read again (``data_dir`` overrides where it was; fetched if absent when
    ``download``), refused when it is not the dataset the run was trained on."""
    from cnnlab.data import location
    from cnnlab.data.registry import get_source, read_dataset

    config = run.config
    source = get_source(config.dataset, config.image_size, config.color)
    if data_dir is None and hasattr(source, "missing"):
        data_dir = location.recorded_or_search(source, config.data_dir)  # type: ignore[arg-type]
    if download:
        directory = source.ensure(data_dir, quiet=True)
    else:
        directory, reason = source.locate(data_dir)
        if directory is None and hasattr(source, "missing"):
            raise DataError(f"{source.name} is {reason}")
    dataset, images = read_dataset(source, directory, config.image_size, config.color)
    if (dataset.classes, dataset.input_shape) != (run.dataset.classes, run.dataset.input_shape):
        raise RunDirError(
            f"{run.path} was trained on {run.dataset.title} ({run.dataset.num_classes} classes of "
            f"{_shape(run.dataset)} images), but the data found now has {dataset.num_classes} classes of "
            f"{_shape(dataset)}; point --data-dir at the data it was trained on"
        )
    return images


def _shape(dataset: Dataset) -> str:
    c, h, w = dataset.input_shape
    return f"{c}x{h}x{w}"


def load_run(path: str | Path) -> LoadedRun:
    """Read ``path``'s config.json, dataset.json and checkpoint.pt, and build its model with the saved
    weights."""
    from cnnlab.training.checkpoint import load_checkpoint
    from cnnlab.training.config import config_of_run
    from cnnlab.training.records import dataset_of_run

    path = rundir.require_run_dir(path)
    config = config_of_run(path)
    dataset = dataset_of_run(path)
    checkpoint = load_checkpoint(path / rundir.CHECKPOINT)
    saved_model = checkpoint["config"].get("model") if isinstance(checkpoint["config"], dict) else None
    if saved_model != config.model:
        raise RunDirError(
            f"{path / rundir.CHECKPOINT} holds weights of model {saved_model!r} but "
            f"{path / rundir.CONFIG} says model {config.model!r}; the two files come from different runs"
        )
    model = _model_with_weights(path, config, dataset, reported_weights(config, checkpoint))
    summary = rundir.read_json(path / rundir.SUMMARY) if (path / rundir.SUMMARY).is_file() else None
    return LoadedRun(path, config, dataset, model, checkpoint.get("history", []), summary)


def reported_weights(config, checkpoint: dict) -> dict | None:
    """The weights the run's own test accuracy was measured with: the best epoch's under early
    stopping, else the EMA average when kept, else the last epoch's."""
    if config.patience is not None and isinstance(checkpoint.get("best_model"), dict):
        return checkpoint["best_model"]
    if isinstance(checkpoint.get("ema"), dict):
        prefix = "module."  # AveragedModel wraps the network as .module, beside its n_averaged counter
        return {k[len(prefix) :]: v for k, v in checkpoint["ema"].items() if k.startswith(prefix)}
    return checkpoint.get("model")


def build_run_model(path: Path, config, dataset: Dataset):
    """A fresh model of the run's architecture: a built-in one from the registry, your own from the
    copy the run keeps (never from the original file, which may have moved or changed)."""
    from cnnlab import user_models
    from cnnlab.models import build_model

    if user_models.is_user_model(config.model):
        return user_models.build(config.model, dataset.input_shape, dataset.num_classes, run_dir=path)
    return build_model(
        config.model, dataset.input_shape, dataset.num_classes, dropout=config.dropout, width=config.width
    )


def _model_with_weights(path: Path, config, dataset: Dataset, state: dict | None):
    import torch

    checkpoint = path / rundir.CHECKPOINT
    model = build_run_model(path, config, dataset)
    if not isinstance(state, dict):
        raise RunDirError(f"{checkpoint} holds no model weights; is it a cnnlab checkpoint?")
    state = {k: torch.as_tensor(v) for k, v in state.items()}  # the numpy backend may save arrays
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # torch's message spans lines; the CLI promises one
        raise RunDirError(
            f"{checkpoint} does not fit model {config.model!r} ({' '.join(str(exc).split())[:200]})"
        ) from None
    return model.eval()

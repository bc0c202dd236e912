"""The numpy backend: cnnlab's from-scratch engine behind the same interface as TorchEngine.

``cnnlab train --backend numpy`` trains with the same data, options, metrics, run directory
and plots as the torch backend; only the arithmetic comes from ``cnnlab.scratch``. Every model
and option of the torch backend on CPU is here (augmentation, dropout, TTA, gradient clipping,
EMA with batch-norm statistics); bf16/fp16 and --compile are refused up front by the config.

Randomness: augmentation and dropout masks come from NumPy Generators seeded from (seed, epoch)
at the start of each epoch, so a run resumed at an epoch boundary draws exactly what an
uninterrupted one draws. They are not the torch backend's draws (torch has its own generators).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from cnnlab import scratch
from cnnlab.data.dataset import Dataset
from cnnlab.models import build_model, tta_shifts
from cnnlab.training.checkpoint import as_ema_state, ema_weights
from cnnlab.training.config import TrainConfig
from cnnlab.training.schedules import build_schedule


class DecoupledWeightDecay:
    """AdamW (Loshchilov & Hutter 2019) as torch does it: ``p *= 1 - lr * wd``, then the Adam step."""

    def __init__(self, optimizer, weight_decay: float):
        self.inner, self.weight_decay = optimizer, weight_decay

    def __getattr__(self, name):  # lr, state, params, zero_grad: the inner optimizer's
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        if name == "lr":
            self.inner.lr = value
        else:
            super().__setattr__(name, value)

    def step(self) -> None:
        for p in self.inner.params:
            p.data *= 1 - self.inner.lr * self.weight_decay
        self.inner.step()


def build_optimizer(config: TrainConfig, params):
    if config.optimizer == "sgd":
        return scratch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return scratch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return DecoupledWeightDecay(
        scratch.optim.Adam(params, lr=config.lr, betas=config.betas), config.weight_decay
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the classes in float32, as the torch engine's ``.float().softmax(1)``."""
    return np.exp(scratch.functional.log_softmax(logits.astype(np.float32), 1))


def class_probabilities(model: scratch.nn.Module, x: np.ndarray, fill, tta: bool = False, tta_shift: int = 0):
    """Softmax probabilities (N, classes) of ``model`` for normalised images x (N, C, H, W): the numpy
    twin of ``cnnlab.models.class_probabilities``, with its views and weights (``tta_shifts``).

    p(x) = sum_v weight_v * q(shift_v(x)), q(z) = (softmax(f(z)) + softmax(f(mirror(z)))) / 2 with
    ``tta``, else softmax(f(z)); the shifted views bring in ``fill`` (the dataset's black) at the border.
    """
    probs: Any = 0
    for (dy, dx), weight in tta_shifts(tta_shift):
        view = scratch.augment.shift(x, dy, dx, fill)
        p = _softmax(scratch.predict(model, view))
        if tta:
            p = (p + _softmax(scratch.predict(model, view[..., ::-1]))) / 2
        probs = probs + np.float32(weight) * p
    return probs


def _update_ema(average: scratch.nn.Module, current: scratch.nn.Module, decay: float | None) -> None:
    """torch's AveragedModel(get_ema_multi_avg_fn(decay), use_buffers=True).update_parameters: a copy at
    the first update (``decay`` None); afterwards float arrays lerp toward the model's and integer
    buffers (num_batches_tracked) become trunc(decay * ema + (1 - decay) * current) in float32, as torch."""
    if decay is None:
        average.load_state_dict(current.state_dict())
        return
    for p, q in zip(average.parameters(), current.parameters()):
        p.data += (1 - decay) * (q.data - p.data)
    for a, b in zip(average.buffers(), current.buffers()):
        if np.issubdtype(a.dtype, np.floating):
            a += (1 - decay) * (b - a)
        else:
            f32 = np.float32
            a[...] = (f32(a) * f32(decay) + f32(b) * f32(1 - decay)).astype(a.dtype)


def _to_tensors(tree):
    """numpy arrays -> torch tensors, so the checkpoint loads with torch.load(weights_only=True)."""
    import torch

    if isinstance(tree, dict):
        return {k: _to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_tensors(v) for v in tree]
    return torch.from_numpy(np.array(tree)) if isinstance(tree, np.ndarray) else tree


def _to_arrays(tree):
    if isinstance(tree, dict):
        return {k: _to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_arrays(v) for v in tree]
    return tree.numpy().copy() if hasattr(tree, "numpy") else tree


class NumpyEngine:
    backend = "numpy"
    precision = "32"

    def __init__(self, config: TrainConfig, steps_per_epoch: int, dataset: Dataset):
        self.config = config
        self.dataset = dataset  # its normalisation is known once the images are read (initialize)
        self.fill = dataset.background() if dataset.mean is not None else 0.0  # what shifts bring in
        if (
            config.threads is not None
        ):  # --threads sets NumPy's BLAS threads (scikit-learn brings threadpoolctl)
            from threadpoolctl import threadpool_limits

            threadpool_limits(config.threads, user_api="blas")
        self.model = build_model(
            config.model,
            dataset.input_shape,
            dataset.num_classes,
            "numpy",
            rng=np.random.default_rng(config.seed),
            dropout=config.dropout,
            width=config.width,
        )
        self.dropouts = [m for m in self.model.modules() if isinstance(m, scratch.nn.Dropout)]
        self.augment_rng = np.random.default_rng([config.seed, 0, 0])
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.schedule = build_schedule(config, steps_per_epoch)
        self.total_steps = config.epochs * steps_per_epoch
        self.base_lr = config.lr
        self.step = 0
        self.best_state: dict | None = None
        # The weights and buffers averaged as torch's AveragedModel(get_ema_multi_avg_fn(decay),
        # use_buffers=True) does: copied at the first update, then ema += (1 - decay) * (w - ema).
        self.ema: Any = copy.deepcopy(self.model) if config.ema is not None else None
        self.ema_updates = 0
        self._set_lr()

    def _set_lr(self) -> None:
        self.optimizer.lr = self.base_lr * self.schedule(self.step, self.total_steps)

    def to_native(self, x: np.ndarray) -> np.ndarray:
        """uint8 images (N, C, H, W) -> normalised float32; anything else as it is."""
        return self.dataset.normalize(x) if x.dtype == np.uint8 else x

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def to_host(self, values: list[Any]) -> list[float]:
        return [float(v) for v in values]

    def set_lr(self, lr: float) -> None:
        self.base_lr = lr
        self._set_lr()

    def describe(self) -> dict[str, Any]:
        from threadpoolctl import threadpool_info

        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return {"device": "cpu", "precision": self.precision, "blas_threads": blas[0] if blas else None}

    def initialize(self, dataset: Dataset, train_images: np.ndarray) -> None:
        self.dataset = dataset
        self.fill = dataset.background()
        if not self.config.whiten:
            return
        from cnnlab.training.whitening import whitened

        state = self.model.state_dict()
        key = next((k for k, v in state.items() if k.endswith("weight") and v.ndim == 4), None)  # first conv
        if key is None:  # a model without convolutions has no patches to whiten
            return
        state[key] = whitened(state[key], dataset, train_images).astype(state[key].dtype)
        self.model.load_state_dict(state)
        if self.ema is not None:  # its copy was made before; it averages from the whitened start
            self.ema.load_state_dict(self.model.state_dict())

    def start_epoch(self, epoch: int) -> None:
        """Seed this epoch's augmentation and dropout masks from (seed, epoch), so a resume repeats them."""
        self.augment_rng = np.random.default_rng([self.config.seed, epoch, 0])
        masks = np.random.default_rng([self.config.seed, epoch, 1])
        for dropout in self.dropouts:
            dropout.generator = masks

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        config = self.config
        x = scratch.augment.augment(
            x, self.augment_rng, config.translate, config.hflip, self.fill, config.pad_mode, config.cutout
        )
        loss, logits = scratch.train_step(
            self.model, self.optimizer, x, y, config.label_smoothing, max_norm=config.grad_clip
        )
        self.step += 1
        self._set_lr()
        if self.ema is not None:
            _update_ema(self.ema, self.model, config.ema if self.ema_updates else None)
            self.ema_updates += 1
        return loss * len(y), int((logits.argmax(1) == y).sum())

    @property
    def eval_model(self):
        return self.ema if self.ema is not None else self.model

    def logits(self, x: np.ndarray) -> np.ndarray:
        config = self.config
        if config.test_time_augmented:  # the log of the averaged probabilities, as torch's
            probs = class_probabilities(self.eval_model, x, self.fill, config.tta, config.tta_shift)
            return np.log(np.maximum(probs, np.float32(1e-12)))
        return scratch.predict(self.eval_model, x)

    def weights(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.eval_model.state_dict().items()}

    def remember_best(self) -> None:
        self.best_state = copy.deepcopy(self.eval_model.state_dict())

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.eval_model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        state = {
            "model": dict(self.model.state_dict()),
            "optimizer": {"state": self.optimizer.state},
            "scheduler": {"step": self.step},
        }
        if self.ema is not None:
            # Laid out as torch's AveragedModel.state_dict(), so the run loader reads either backend's run.
            state["ema"] = as_ema_state(self.ema.state_dict(), np.array(self.ema_updates))
        if self.best_state is not None:
            state["best_model"] = dict(self.best_state)
        return _to_tensors(copy.deepcopy(state))

    def load_state_dict(self, state: dict) -> None:
        state = _to_arrays(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.state[:] = state["optimizer"]["state"]
        self.step = int(state["scheduler"]["step"])
        self.best_state = state.get("best_model")
        if self.ema is not None:
            ema = state["ema"]
            self.ema.load_state_dict(ema_weights(ema))
            self.ema_updates = int(ema["n_averaged"])
        self._set_lr()

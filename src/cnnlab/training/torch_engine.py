"""The torch backend: model, optimizer and schedule behind a small interface the loop drives.

The loop (``cnnlab.training.loop``) knows nothing of torch; an engine turns index batches into
optimizer steps and arrays into logits. ``cnnlab.training.numpy_engine`` is the same interface
over cnnlab's from-scratch engine. Every option is turned into an object or a function here,
before training starts, so the step itself has no flag branches.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.data.dataset import PIXEL_MAX, Dataset
from cnnlab.errors import ConfigError, given
from cnnlab.models import build_model, class_probabilities
from cnnlab.training import distributed
from cnnlab.training.augment import augment
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import SINGLE, World
from cnnlab.training.schedules import build_schedule


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device for this process; under torchrun, GPU number LOCAL_RANK."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"{given('device', 'cuda')} was asked for but no CUDA GPU is available; use "
            f"{given('device', 'cpu')} or auto"
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs in hardware here (AVX512-BF16/AMX on CPU, Ampere or later on GPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pick_precision(name: str, device: torch.device) -> str:
    return ("bf16" if native_bf16(device) else "32") if name == "auto" else name


def normalize_images(pixels: torch.Tensor, dataset: Dataset) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, H, W), bit-identical to ``Dataset.normalize`` (the same
    float32 operations in the same order; checked on CPU by the tests), in a few vectorised passes on
    the tensor's device."""
    shape = (1, dataset.channels, 1, 1)
    mean = torch.tensor(dataset.mean, dtype=torch.float32, device=pixels.device).view(shape)
    std = torch.tensor(dataset.std, dtype=torch.float32, device=pixels.device).view(shape)
    return pixels.float().div_(PIXEL_MAX).sub_(mean).div_(std)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    # fused: one kernel for all parameters instead of a few per tensor, so a step is faster than with
    # torch's default (foreach), on a CPU too (the docs' results page).
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, fused=True
        )
    betas, decay = config.betas, config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=betas, weight_decay=decay, fused=True)
    return torch.optim.AdamW(params, lr=config.lr, betas=betas, weight_decay=decay, fused=True)


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


class TorchEngine:
    backend = "torch"

    def __init__(self, config: TrainConfig, steps_per_epoch: int, dataset: Dataset, world: World = SINGLE):
        self.config = config
        self.dataset = dataset  # its normalisation is known once the images are read (initialize)
        self.fill = dataset.background() if dataset.mean is not None else 0.0  # what shifts bring in
        self.device = pick_device(config.device, world.local_rank)
        distributed.init(world, self.device.type)
        self.precision = pick_precision(config.precision, self.device)
        self.layout = torch.channels_last if config.channels_last else torch.contiguous_format
        torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
        model = build_model(
            config.model, dataset.input_shape, dataset.num_classes, dropout=config.dropout, width=config.width
        )
        self.model = model.to(self.device, memory_format=self.layout)
        self.optimizer = build_optimizer(config, self.model.parameters())
        schedule = build_schedule(config, steps_per_epoch)
        total = config.epochs * steps_per_epoch
        self.multiplier = lambda step: schedule(step, total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.multiplier)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.autocast = _autocast(self.device, self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "16-mixed")
        self.ema = self._build_ema(config.ema)
        self.forward = distributed.wrap(self.model, world, self.device)
        self.forward = torch.compile(self.forward) if config.compile else self.forward
        # On the device, so drawing an augmentation never waits on (or copies from) the host.
        self.augment_rng = torch.Generator(device=self.device)
        self.best_state: dict | None = None  # the evaluated weights at the best epoch (early stopping)

    def _build_ema(self, decay: float | None):
        if decay is None:
            return None
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        # use_buffers: batch-norm statistics are averaged too, so the EMA model evaluates as trained.
        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def to_native(self, x: np.ndarray) -> torch.Tensor:
        """A tensor on the device; uint8 images (N, C, H, W) come back normalised as float32."""
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        if t.dtype == torch.uint8:
            t = normalize_images(t, self.dataset)
        return t.contiguous(memory_format=self.layout) if t.dim() == 4 else t

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def to_host(self, values: list[Any]) -> list[float]:
        return torch.stack(
            [torch.as_tensor(v, dtype=torch.float64, device=self.device) for v in values]
        ).tolist()

    def set_lr(self, lr: float) -> None:
        # LambdaLR recomputes each step's rate as base_lr * multiplier(step): change the base too.
        self.scheduler.base_lrs = [lr] * len(self.optimizer.param_groups)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * self.multiplier(self.scheduler.last_epoch)

    def describe(self) -> dict[str, Any]:
        return {"device": str(self.device), "precision": self.precision}

    def initialize(self, dataset: Dataset, train_images: np.ndarray) -> None:
        self.dataset = dataset
        self.fill = dataset.background()
        if not self.config.whiten:
            return
        from cnnlab.training.whitening import whitened

        first = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:  # a model without convolutions has no patches to whiten
            return
        weight = whitened(first.weight.detach().float().cpu().numpy(), dataset, train_images)
        with torch.no_grad():
            first.weight.copy_(torch.from_numpy(weight))
        if self.ema is not None:  # its copy was made before; it averages from the whitened start
            self.ema.module.load_state_dict(self.model.state_dict())

    def start_epoch(self, epoch: int) -> None:
        self.augment_rng.manual_seed(self.config.seed * 100_003 + epoch)  # resumable augmentation

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (summed loss over the batch, correct predictions), on the device."""
        labels = y
        x = augment(x, self.augment_rng, self.config, self.fill)
        self.model.train()
        with self.autocast():
            logits = self.forward(x)
            loss = self.loss_fn(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        # Detached sums on the device; the loop reads them once an epoch (to_host), never per step.
        return loss.detach().double() * len(labels), (logits.argmax(1) == labels).sum()

    @torch.inference_mode()
    def logits(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        # 256, not larger: the first layer's activations then stay in cache (bench/startup.py compares).
        model = self.eval_model.eval()
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            with self.autocast():
                if (
                    self.config.test_time_augmented
                ):  # the log of the averaged probabilities, so argmax and loss use the average
                    probs = class_probabilities(model, xb, self.fill, self.config.tta, self.config.tta_shift)
                    logits = probs.clamp_min(1e-12).log()
                else:
                    logits = model(xb).float()
            out.append(logits.cpu())
        return torch.cat(out).numpy()

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().float().cpu().numpy() for k, v in self.eval_model.state_dict().items()}

    def remember_best(self) -> None:
        self.best_state = copy.deepcopy(self.eval_model.state_dict())

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.eval_model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.best_state is not None:
            state["best_model"] = self.best_state
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.best_state = state.get("best_model")

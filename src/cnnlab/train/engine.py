"""The torch backend: model, optimizer and schedule behind a small interface the loop drives.

The loop (``cnnlab.train.loop``) knows nothing of torch; an engine turns index batches into
optimizer steps and arrays into logits. ``cnnlab.train.numpy_engine`` is the same interface
over cnnlab's from-scratch engine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnlab.models import build_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.schedules import SCHEDULES


def pick_device(name: str) -> torch.device:
    from cnnlab.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


class TorchEngine:
    backend = "torch"

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.device = pick_device(config.device)
        torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
        self.model = build_model(config.model).to(self.device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        total = config.epochs * steps_per_epoch
        schedule = SCHEDULES[config.schedule]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: schedule(step, total))
        self.loss_fn = nn.CrossEntropyLoss()

    def to_native(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.device)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_batch(self, x: torch.Tensor, y: np.ndarray) -> tuple[float, int]:
        """One optimizer step; returns (summed loss over the batch, correct predictions)."""
        y = self.to_native(y)
        self.model.train()
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.item() * len(y), int((logits.argmax(1) == y).sum())

    @torch.inference_mode()
    def logits(self, x: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
        self.model.eval()
        return torch.cat([self.model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).float().cpu().numpy()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])

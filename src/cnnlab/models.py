"""The model registry: a name -> a network, for each backend.

``seed`` is the notebook's ConvNet exactly, ReLU on the logits included, so its results
reproduce. ``convnet`` drops that ReLU, which zeroes negative logits and stalls the
notebook near 80%. Both backends build the same layer indices, so a state_dict moves
between them unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from cnnlab.errors import ConfigError

BACKENDS = ("torch", "numpy")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build_torch: Callable  # () -> torch.nn.Module
    build_numpy: Callable | None = None  # (numpy Generator) -> cnnlab.scratch.nn.Module
    input_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)


def _notebook_convnet(relu_on_logits: bool):
    from torch import nn

    layers = [
        nn.Conv2d(1, 32, kernel_size=3),  # (N, 32, 26, 26)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 13, 13)
        nn.Conv2d(32, 64, kernel_size=3),  # (N, 64, 11, 11)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 64, 5, 5)
        nn.Flatten(),  # (N, 1600)
        nn.Linear(64 * 5 * 5, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    ]
    if relu_on_logits:
        layers.append(nn.ReLU())  # the notebook's bug, kept on purpose in `seed`
    return nn.Sequential(*layers)


def _scratch(name: str):
    def build(rng):
        from cnnlab.scratch import models as scratch_models

        return getattr(scratch_models, f"build_{name}")(rng)

    return build


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


register(ModelSpec("seed", "the notebook's ConvNet as written (conv32-pool-conv64-pool-fc128-fc10, ReLU on logits)",
                   lambda: _notebook_convnet(relu_on_logits=True), _scratch("seed")))
register(ModelSpec("convnet", "the notebook's ConvNet without the ReLU on the logits",
                   lambda: _notebook_convnet(relu_on_logits=False), _scratch("convnet")))


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, backend: str = "torch", rng=None):
    """A fresh model. For the numpy backend, ``rng`` is a numpy Generator for the initial weights."""
    spec = get_spec(name)
    if backend == "torch":
        return spec.build_torch()
    if backend == "numpy":
        if spec.build_numpy is None:
            raise ConfigError(f"model {name!r} has no numpy backend; use --backend torch "
                              f"or one of: {', '.join(n for n, s in MODELS.items() if s.build_numpy)}")
        import numpy as np

        return spec.build_numpy(rng if rng is not None else np.random.default_rng(0))
    raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")

"""The notebook's networks built from scratch layers, with torch's state_dict keys.

Both take a 1x28x28 image: conv 3x3 (32) -> ReLU -> pool 2 -> conv 3x3 (64) -> ReLU -> pool 2
-> flatten 1600 -> linear 128 -> ReLU -> linear 10. ``seed`` is the notebook as written,
which also applies ReLU to the logits (so negative logits get no gradient, and it stalls);
``convnet`` drops that ReLU. Keys: "0.weight", "0.bias", "3.*", "7.*", "9.*".
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

__all__ = ["build_seed", "build_convnet"]


def _notebook_convnet(rng, relu_on_logits: bool, dtype) -> Sequential:
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    layers = [
        Conv2d(1, 32, 3, rng=rng, dtype=dtype),
        ReLU(),
        MaxPool2d(2),  # (N, 32, 13, 13)
        Conv2d(32, 64, 3, rng=rng, dtype=dtype),
        ReLU(),
        MaxPool2d(2),  # (N, 64, 5, 5)
        Flatten(),  # (N, 1600)
        Linear(1600, 128, rng=rng, dtype=dtype),
        ReLU(),
        Linear(128, 10, rng=rng, dtype=dtype),
    ]
    return Sequential(*layers, ReLU()) if relu_on_logits else Sequential(*layers)


def build_seed(rng=None, dtype=np.float32) -> Sequential:
    """The notebook's network as written, ReLU on the logits included (225,034 parameters)."""
    return _notebook_convnet(rng, relu_on_logits=True, dtype=dtype)


def build_convnet(rng=None, dtype=np.float32) -> Sequential:
    """The notebook's network without the ReLU on the logits."""
    return _notebook_convnet(rng, relu_on_logits=False, dtype=dtype)

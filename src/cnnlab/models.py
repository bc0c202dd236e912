"""The model registry: a name -> a network, for each backend.

``seed`` is the notebook's ConvNet exactly, ReLU on the logits included, so its results
reproduce. ``convnet`` drops that ReLU, which zeroes negative logits and stalls the
notebook near 80%. Both backends build the same layer indices, so a state_dict moves
between them unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cnnlab.errors import ConfigError

BACKENDS = ("torch", "numpy")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build_torch: Callable  # () -> torch.nn.Module
    build_numpy: Callable | None = None  # (numpy Generator, dropout=) -> cnnlab.scratch.nn.Module
    input_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)


def _notebook_convnet(relu_on_logits: bool, dropout: float = 0.0):
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
    if dropout:  # NOTE: shifts the last Linear's index, so such a state_dict has other keys
        layers.insert(9, nn.Dropout(dropout))
    if relu_on_logits:
        layers.append(nn.ReLU())  # the notebook's bug, kept on purpose in `seed`
    return nn.Sequential(*layers)


def _scratch(name: str):
    """The numpy builder of registry model ``name``: cnnlab.scratch.models.build_<name>."""

    def build(rng, dropout: float = 0.0):
        from cnnlab.scratch import models as scratch_models

        return getattr(scratch_models, f"build_{name.replace('-', '_')}")(rng, dropout=dropout)

    return build


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


def _convnet_bn(dropout: float = 0.0):
    """The notebook's network with batch norm after each conv and the hidden linear layer
    (Ioffe & Szegedy 2015)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 13, 13)
        nn.Conv2d(32, 64, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 64, 5, 5)
        nn.Flatten(),  # (N, 1600)
        nn.Linear(1600, 128, bias=False),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, 10),
    )


def _conv_bn_relu(c_in: int, c_out: int) -> list:
    from torch import nn

    # No conv bias: the batch norm right after it has its own shift.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _vgg_mini(dropout: float = 0.0, widths: tuple[int, int, int] = (32, 64, 128)):
    """Five 3x3 conv-BN-ReLU layers for 28x28 grayscale, sized for CPUs (about 0.29M parameters).

    One conv at full resolution only (the 28x28 stage is the most expensive per channel), then two
    convs at 14x14 and two at 7x7, and a global max pool, so the head has no large linear layer.
    """
    from torch import nn

    a, b, c = widths
    return nn.Sequential(
        *_conv_bn_relu(1, a),
        nn.MaxPool2d(2),  # (N, a, 14, 14)
        *_conv_bn_relu(a, b),
        *_conv_bn_relu(b, b),
        nn.MaxPool2d(2),  # (N, b, 7, 7)
        *_conv_bn_relu(b, c),
        *_conv_bn_relu(c, c),  # (N, c, 7, 7)
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),  # (N, c)
        nn.Dropout(dropout),
        nn.Linear(c, 10),
    )


register(
    ModelSpec(
        "seed",
        "the notebook's ConvNet as written (conv32-pool-conv64-pool-fc128-fc10, ReLU on logits)",
        lambda dropout=0.0: _notebook_convnet(True, dropout),
        _scratch("seed"),
    )
)
register(
    ModelSpec(
        "convnet",
        "the notebook's ConvNet without the ReLU on the logits",
        lambda dropout=0.0: _notebook_convnet(False, dropout),
        _scratch("convnet"),
    )
)
register(
    ModelSpec(
        "convnet-bn",
        "convnet with batch norm after each conv and the hidden linear layer",
        _convnet_bn,
        _scratch("convnet-bn"),
    )
)
register(
    ModelSpec(
        "vgg-mini",
        "five 3x3 conv-BN-ReLU layers (32-64-64-128-128), global max pool; fast on CPU",
        _vgg_mini,
        _scratch("vgg-mini"),
    )
)


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, backend: str = "torch", rng=None, dropout: float = 0.0):
    """A fresh model. For the numpy backend, ``rng`` is a numpy Generator for the initial weights."""
    spec = get_spec(name)
    if backend == "torch":
        return spec.build_torch(dropout=dropout)
    if backend == "numpy":
        if spec.build_numpy is None:
            raise ConfigError(
                f"model {name!r} has no numpy backend; use --backend torch "
                f"or one of: {', '.join(n for n, s in MODELS.items() if s.build_numpy)}"
            )
        import numpy as np

        return spec.build_numpy(rng if rng is not None else np.random.default_rng(0), dropout=dropout)
    raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


def class_probabilities(model, x, tta: bool = False):
    """Softmax probabilities (N, 10) of a torch ``model`` for normalised images ``x`` (N, 1, 28, 28).

    With ``tta`` (test-time augmentation), the mean of the image's and its mirror's probabilities:
    the one TTA that training's evaluation, ``evaluate``, ``report`` and ``predict`` all use.
    """
    probs = model(x).float().softmax(1)
    if tta:
        probs = (probs + model(x.flip(-1)).float().softmax(1)) / 2
    return probs

"""The model registry: a name -> a network, for each backend.

``seed`` is the notebook's ConvNet exactly, ReLU on the logits included, so its results
reproduce. ``convnet`` drops that ReLU, which zeroes negative logits and stalls the
notebook near 80%. Both backends build the same layer indices, so a state_dict moves
between them unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cnnlab.data import BACKGROUND
from cnnlab.errors import ConfigError, given, option

BACKENDS = ("torch", "numpy")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build_torch: Callable  # () -> torch.nn.Module
    build_numpy: Callable | None = None  # (numpy Generator, dropout=[, widths=]) -> scratch.nn.Module
    input_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    base_widths: tuple[int, ...] | None = None  # the channel widths --width multiplies; None: fixed


def scaled_widths(base: tuple[int, ...], width: float) -> tuple[int, ...]:
    """``base`` times ``width``, each rounded and at least 1: --width 2 makes vgg-mini 64-128-256."""
    return tuple(max(1, round(w * width)) for w in base)


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

    def build(rng, dropout: float = 0.0, **widths):
        from cnnlab.scratch import models as scratch_models

        return getattr(scratch_models, f"build_{name.replace('-', '_')}")(rng, dropout=dropout, **widths)

    return build


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


def _convnet_bn(dropout: float = 0.0, pool_before_norm: bool = False):
    """The notebook's network with batch norm after each conv and the hidden linear layer
    (Ioffe & Szegedy 2015).

    Each max-pool comes before its ReLU: the two commute (max(relu(a), relu(b)) = relu(max(a, b))),
    so the ReLU runs on a quarter of the values, and in place. The same function as ReLU-then-pool,
    with a training step about 1.3x faster on 2 CPU cores (README, results).

    ``pool_before_norm`` (``convnet-pool-bn``) moves each max-pool before its batch norm too, as
    airbench's conv blocks (Jordan 2024): the norm then runs on a quarter of the values, for a step
    about 1.14x faster again. Not the same function: the batch statistics are the pooled values'.
    """
    from torch import nn

    def stage(c_in: int, c_out: int) -> list:
        conv, norm, pool = nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.MaxPool2d(2)
        return (
            [conv, pool, norm, nn.ReLU(inplace=True)]
            if pool_before_norm
            else [conv, norm, pool, nn.ReLU(inplace=True)]
        )

    return nn.Sequential(
        *stage(1, 32),  # (N, 32, 13, 13)
        *stage(32, 64),  # (N, 64, 5, 5)
        nn.Flatten(),  # (N, 1600)
        nn.Linear(1600, 128, bias=False),
        nn.BatchNorm1d(128),
        nn.ReLU(inplace=True),
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


def _residual_block(channels: int):
    """ResNet's basic block at a fixed width (He et al. 2016): relu(bn(conv(relu(bn(conv(x))))) + x)."""
    from torch import nn

    class ResidualBlock(nn.Module):
        # Keys "body.*" as cnnlab.scratch.nn.ResidualBlock's, so a state_dict moves between backends.
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.shortcut = nn.Sequential()  # the identity: the block keeps the shape
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.body(x) + self.shortcut(x))

    return ResidualBlock()


def _resnet_mini(dropout: float = 0.0, widths: tuple[int, int, int] = (32, 64, 128)):
    """A small ResNet for 28x28 grayscale: vgg-mini with a residual block after each of its two
    widening convs (seven 3x3 convs, about 0.46M parameters at width 1).

    The stem and the pools are vgg-mini's; each stage widens with one conv-BN-ReLU and then adds
    a basic block, whose identity skip lets the gradient reach the stem undiminished.
    """
    from torch import nn

    a, b, c = widths
    return nn.Sequential(
        *_conv_bn_relu(1, a),
        nn.MaxPool2d(2),  # (N, a, 14, 14)
        *_conv_bn_relu(a, b),
        _residual_block(b),  # index 7
        nn.MaxPool2d(2),  # (N, b, 7, 7)
        *_conv_bn_relu(b, c),
        _residual_block(c),  # index 12; (N, c, 7, 7)
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
        "convnet-pool-bn",
        "convnet-bn with each max-pool before its batch norm: the norm runs on a quarter of the values",
        lambda dropout=0.0: _convnet_bn(dropout, pool_before_norm=True),
        _scratch("convnet-pool-bn"),
    )
)
register(
    ModelSpec(
        "vgg-mini",
        "five 3x3 conv-BN-ReLU layers (32-64-64-128-128), global max pool; fast on CPU",
        _vgg_mini,
        _scratch("vgg-mini"),
        base_widths=(32, 64, 128),
    )
)
register(
    ModelSpec(
        "resnet-mini",
        "vgg-mini with a residual basic block in each of its 14x14 and 7x7 stages (seven 3x3 convs)",
        _resnet_mini,
        _scratch("resnet-mini"),
        base_widths=(32, 64, 128),
    )
)


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


MAX_WIDTH = 16.0  # 16x vgg-mini is 41M parameters: beyond it, a typo rather than a plan


def check_width(name: str, width: float) -> None:
    """A --width in (0, MAX_WIDTH], and other than 1 only for models whose widths scale."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        raise ConfigError(
            f"{option('width')} must be a number in (0, {MAX_WIDTH:g}], e.g. 2. Received: {width!r}"
        )
    if width != 1 and get_spec(name).base_widths is None:
        scalable = ", ".join(n for n, s in MODELS.items() if s.base_widths)
        raise ConfigError(f"{option('width')} applies to {scalable} only; drop it for {given('model', name)}")


def build_model(name: str, backend: str = "torch", rng=None, dropout: float = 0.0, width: float = 1.0):
    """A fresh model. For the numpy backend, ``rng`` is a numpy Generator for the initial weights.
    ``width`` multiplies the channel widths of the models that have them (vgg-mini, resnet-mini)."""
    spec = get_spec(name)
    check_width(name, width)
    widths = {} if spec.base_widths is None else {"widths": scaled_widths(spec.base_widths, width)}
    if backend == "torch":
        return spec.build_torch(dropout=dropout, **widths)
    if backend == "numpy":
        if spec.build_numpy is None:
            raise ConfigError(
                f"model {name!r} has no numpy backend; use {given('backend', 'torch')} "
                f"or one of: {', '.join(n for n, s in MODELS.items() if s.build_numpy)}"
            )
        import numpy as np

        return spec.build_numpy(
            rng if rng is not None else np.random.default_rng(0), dropout=dropout, **widths
        )
    raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


# Test-time augmentation's views and their weights: the image (and its mirror, with --tta) carries
# half the weight when --tta-shift adds the two diagonal shifts, which share the other half.
TTA_UNSHIFTED_WEIGHT = 0.5


def tta_shifts(shift: int) -> list[tuple[tuple[int, int], float]]:
    """The (dy, dx) offsets test-time augmentation averages over, with their weights (summing to 1)."""
    if shift <= 0:
        return [((0, 0), 1.0)]
    other = (1 - TTA_UNSHIFTED_WEIGHT) / 2
    return [((0, 0), TTA_UNSHIFTED_WEIGHT), ((-shift, -shift), other), ((shift, shift), other)]


def shift_images(x, dy: int, dx: int, fill: float = BACKGROUND):
    """Images (N, C, H, W) moved down ``dy`` and right ``dx`` pixels (negative: up, left), ``fill``
    (the black background after normalisation) coming in at the border."""
    import torch.nn.functional as F

    if dy == dx == 0:
        return x
    h, w = x.shape[-2:]
    s = max(abs(dy), abs(dx))
    padded = F.pad(x, (s,) * 4, value=fill)
    return padded[..., s - dy : s - dy + h, s - dx : s - dx + w]


def class_probabilities(model, x, tta: bool = False, tta_shift: int = 0):
    """Softmax probabilities (N, 10) of a torch ``model`` for normalised images ``x`` (N, 1, 28, 28).

    Test-time augmentation: with ``tta``, the mean of the image's and its mirror's probabilities;
    with ``tta_shift``, also of the image shifted by that many pixels up-left and down-right,
    weighted by ``tta_shifts``. The one TTA that training's evaluation, ``evaluate``, ``report``
    and ``predict`` all use.
    """
    probs = 0
    for (dy, dx), weight in tta_shifts(tta_shift):
        view = shift_images(x, dy, dx)
        p = model(view).float().softmax(1)
        if tta:
            p = (p + model(view.flip(-1)).float().softmax(1)) / 2
        probs = probs + weight * p
    return probs

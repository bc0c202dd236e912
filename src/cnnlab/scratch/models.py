"""Every registry model built from scratch layers, with torch's state_dict keys (cnnlab.models).

The layer indices equal the torch builders', so a state_dict moves between the backends
unchanged. All take a 1x28x28 image. Each ReLU next to a max-pool or a batch norm is fused into
it (``nn.fuse_relu``: the same results, fewer passes over the largest arrays).

- ``seed``, ``convnet``: conv 3x3 (32) -> ReLU -> pool 2 -> conv 3x3 (64) -> ReLU -> pool 2 ->
  flatten 1600 -> linear 128 -> ReLU -> linear 10. ``seed`` is the notebook as written, which also
  applies ReLU to the logits (so negative logits get no gradient, and it stalls); ``convnet``
  drops it. Keys "0.*", "3.*", "7.*", "9.*"; with dropout a Dropout sits at index 9, and the
  last linear layer becomes "10.*", as in the torch builder.
- ``convnet_bn``: the same with batch norm after each conv and the hidden linear layer (no
  biases before them), each max-pool before its ReLU (they commute), and a Dropout
  (p = ``dropout``) before the last linear layer.
- ``convnet_pool_bn``: convnet_bn with each max-pool before its batch norm (a different function:
  the statistics are the pooled values'), as airbench's conv blocks; the faster step.
- ``vgg_mini``: five conv 3x3 (padding 1, no bias) -> BatchNorm2d -> ReLU layers, widths
  32-64-64-128-128, a 2x2 max-pool after the first and the third, a global max pool, dropout and
  a linear layer: about 0.29M parameters.
- ``resnet_mini``: vgg-mini with the second conv of each of its 14x14 and 7x7 stages replaced by
  a residual basic block (two conv-BN layers and the identity skip): seven 3x3 convs, about 0.46M
  parameters. Keys "7.body.*" and "12.body.*" for the blocks.
- ``basic_block``: the residual block (two 3x3 conv-BN layers, a 1x1 conv-BN shortcut when the
  shape changes, ReLU after the sum) for residual models.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.nn import (
    AdaptiveMaxPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    ResidualBlock,
    Sequential,
    fuse_relu,
)

__all__ = [
    "build_seed",
    "build_convnet",
    "build_convnet_bn",
    "build_convnet_pool_bn",
    "build_vgg_mini",
    "build_resnet_mini",
    "basic_block",
]


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _notebook_convnet(rng, relu_on_logits: bool, dtype, dropout: float) -> Sequential:
    rng = _rng(rng)
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
    if dropout:  # as the torch builder: shifts the last Linear's index
        layers.insert(9, Dropout(dropout, rng=rng))
    return fuse_relu(Sequential(*layers, ReLU()) if relu_on_logits else Sequential(*layers))


def build_seed(rng=None, dtype=np.float32, dropout: float = 0.0) -> Sequential:
    """The notebook's network as written, ReLU on the logits included (225,034 parameters)."""
    return _notebook_convnet(rng, relu_on_logits=True, dtype=dtype, dropout=dropout)


def build_convnet(rng=None, dtype=np.float32, dropout: float = 0.0) -> Sequential:
    """The notebook's network without the ReLU on the logits."""
    return _notebook_convnet(rng, relu_on_logits=False, dtype=dtype, dropout=dropout)


def build_convnet_bn(
    rng=None, dtype=np.float32, dropout: float = 0.0, pool_before_norm: bool = False
) -> Sequential:
    """convnet with batch norm after each conv and the hidden linear layer (Ioffe & Szegedy 2015),
    each max-pool before its ReLU as the torch builder's (they commute); with ``pool_before_norm``
    (``convnet-pool-bn``), before its batch norm too."""
    rng = _rng(rng)

    def stage(c_in: int, c_out: int) -> list:
        conv, norm = Conv2d(c_in, c_out, 3, bias=False, rng=rng, dtype=dtype), BatchNorm2d(c_out, dtype=dtype)
        return [conv, MaxPool2d(2), norm, ReLU()] if pool_before_norm else [conv, norm, MaxPool2d(2), ReLU()]

    model = Sequential(
        *stage(1, 32),  # (N, 32, 13, 13)
        *stage(32, 64),  # (N, 64, 5, 5)
        Flatten(),  # (N, 1600)
        Linear(1600, 128, bias=False, rng=rng, dtype=dtype),
        BatchNorm1d(128, dtype=dtype),
        ReLU(),
        Dropout(dropout, rng=rng),
        Linear(128, 10, rng=rng, dtype=dtype),
    )
    return fuse_relu(model)


def build_convnet_pool_bn(rng=None, dtype=np.float32, dropout: float = 0.0) -> Sequential:
    """convnet-bn with each max-pool before its batch norm (cnnlab.models): the statistics are the
    pooled values', and the norm and ReLU run on a quarter of the values."""
    return build_convnet_bn(rng, dtype, dropout, pool_before_norm=True)


def _conv_bn_relu(c_in: int, c_out: int, rng, dtype) -> list:
    # No conv bias: the batch norm right after it has its own shift.
    return [
        Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng, dtype=dtype),
        BatchNorm2d(c_out, dtype=dtype),
        ReLU(inplace=True),
    ]


def build_vgg_mini(rng=None, dtype=np.float32, dropout: float = 0.0, widths=(32, 64, 128)) -> Sequential:
    """Five 3x3 conv-BN-ReLU layers, a global max pool and one linear layer (cnnlab.models)."""
    rng = _rng(rng)
    a, b, c = widths
    model = Sequential(
        *_conv_bn_relu(1, a, rng, dtype),
        MaxPool2d(2),  # (N, a, 14, 14)
        *_conv_bn_relu(a, b, rng, dtype),
        *_conv_bn_relu(b, b, rng, dtype),
        MaxPool2d(2),  # (N, b, 7, 7)
        *_conv_bn_relu(b, c, rng, dtype),
        *_conv_bn_relu(c, c, rng, dtype),  # (N, c, 7, 7)
        AdaptiveMaxPool2d(1),  # (N, c, 1, 1)
        Flatten(),  # (N, c)
        Dropout(dropout, rng=rng),
        Linear(c, 10, rng=rng, dtype=dtype),
    )
    return fuse_relu(model)


def basic_block(c_in: int, c_out: int, stride: int = 1, rng=None, dtype=np.float32) -> ResidualBlock:
    """ResNet's basic block (He et al. 2016): relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)).

    The shortcut is the identity when the shape is kept, else a strided 1x1 conv and batch norm.
    Keys: "body.0.weight", "body.1.*", "body.3.weight", "body.4.*", "shortcut.0.weight", "shortcut.1.*".
    """
    rng = _rng(rng)
    body = Sequential(
        Conv2d(c_in, c_out, 3, stride, 1, bias=False, rng=rng, dtype=dtype),
        BatchNorm2d(c_out, dtype=dtype),
        ReLU(),
        Conv2d(c_out, c_out, 3, 1, 1, bias=False, rng=rng, dtype=dtype),
        BatchNorm2d(c_out, dtype=dtype),
    )
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = Sequential(
            Conv2d(c_in, c_out, 1, stride, bias=False, rng=rng, dtype=dtype), BatchNorm2d(c_out, dtype=dtype)
        )
    return fuse_relu(ResidualBlock(body, shortcut))


def build_resnet_mini(rng=None, dtype=np.float32, dropout: float = 0.0, widths=(32, 64, 128)) -> Sequential:
    """vgg-mini with a residual basic block in each of its two later stages (cnnlab.models)."""
    rng = _rng(rng)
    a, b, c = widths
    model = Sequential(
        *_conv_bn_relu(1, a, rng, dtype),
        MaxPool2d(2),  # (N, a, 14, 14)
        *_conv_bn_relu(a, b, rng, dtype),
        basic_block(b, b, rng=rng, dtype=dtype),  # index 7
        MaxPool2d(2),  # (N, b, 7, 7)
        *_conv_bn_relu(b, c, rng, dtype),
        basic_block(c, c, rng=rng, dtype=dtype),  # index 12; (N, c, 7, 7)
        AdaptiveMaxPool2d(1),  # (N, c, 1, 1)
        Flatten(),  # (N, c)
        Dropout(dropout, rng=rng),
        Linear(c, 10, rng=rng, dtype=dtype),
    )
    return fuse_relu(model)

"""Layers for the scratch engine, named and constructed as in ``torch.nn``.

Each layer is a thin wrapper around a functional op: ``forward(x)`` (also ``__call__``) runs
it and, in training mode, keeps what the backward needs (the convolution's im2col matrix, the
max-pool's argmax, batch norm's normalised input, dropout's mask); ``backward(grad_output)``
adds the parameter gradients into ``.grad`` and returns the input gradient. ``state_dict()``
keys, shapes and order equal torch's (buffers included), so weights move both ways. Default
initialisation follows torch: weights kaiming-uniform with a = sqrt(5), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases the same bound, drawn from ``rng``; batch norm
starts at weight 1, bias 0, running mean 0, running variance 1.

One module per kind of layer, as torch.nn.modules: conv (Conv2d), pooling (MaxPool2d,
AvgPool2d, AdaptiveMaxPool2d, AdaptiveAvgPool2d), linear (Linear, Flatten), activation (ReLU),
batchnorm (BatchNorm1d, BatchNorm2d), dropout (Dropout), residual (ResidualBlock) and fusion
(fuse_relu); Module, Parameter and Sequential come from ``cnnlab.scratch.module``. Import them
all from here: ``from cnnlab.scratch import nn``.
"""

from __future__ import annotations

from cnnlab.scratch.module import Module, Parameter, Sequential
from cnnlab.scratch.nn.activation import ReLU
from cnnlab.scratch.nn.batchnorm import BatchNorm1d, BatchNorm2d
from cnnlab.scratch.nn.conv import Conv2d
from cnnlab.scratch.nn.dropout import Dropout
from cnnlab.scratch.nn.fusion import fuse_relu
from cnnlab.scratch.nn.linear import Flatten, Linear
from cnnlab.scratch.nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from cnnlab.scratch.nn.residual import ResidualBlock

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool2d",
    "Linear",
    "ReLU",
    "Flatten",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "ResidualBlock",
    "fuse_relu",
]

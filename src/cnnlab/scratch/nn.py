"""Layers for the scratch engine, named and constructed as in ``torch.nn``.

Each layer is a thin wrapper around a functional op, and lives in the module of that op: ``conv``
(Conv2d), ``pool`` (MaxPool2d, AvgPool2d), ``adaptive`` (AdaptiveMaxPool2d, AdaptiveAvgPool2d),
``norm`` (BatchNorm1d, BatchNorm2d), ``linear`` (Linear, Flatten), ``activation`` (ReLU) and
``dropout`` (Dropout); Module, Parameter and Sequential come from ``module``. This module gathers
them, and holds the two that wrap other layers rather than an op: ``ResidualBlock`` and
``fuse_relu``. Import them all from here: ``from cnnlab.scratch import nn``.

``forward(x)`` (also ``__call__``) runs the op and, in training mode, keeps what the backward needs
(the convolution's im2col matrix, the max-pool's argmax, batch norm's normalised input, dropout's
mask); ``backward(grad_output)`` adds the parameter gradients into ``.grad`` and returns the input
gradient. ``state_dict()`` keys, shapes and order equal torch's (buffers included), so weights move
both ways. Default initialisation follows torch: weights kaiming-uniform with a = sqrt(5), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases the same bound, drawn from ``rng``; batch norm
starts at weight 1, bias 0, running mean 0, running variance 1.
"""

from __future__ import annotations

from cnnlab import shapes
from cnnlab.scratch.activation import ReLU
from cnnlab.scratch.adaptive import AdaptiveAvgPool2d, AdaptiveMaxPool2d
from cnnlab.scratch.conv import Conv2d
from cnnlab.scratch.dropout import Dropout
from cnnlab.scratch.linear import Flatten, Linear
from cnnlab.scratch.module import Module, Parameter, Sequential
from cnnlab.scratch.norm import BatchNorm1d, BatchNorm2d
from cnnlab.scratch.pool import AvgPool2d, MaxPool2d

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


class ResidualBlock(Module):
    """``relu(body(x) + shortcut(x))``: the skip path of a residual network (He et al. 2016).

    ``shortcut`` None is the identity (an empty Sequential, so it adds no state_dict keys, like
    torch's ``nn.Sequential()``); ``relu=False`` leaves the sum as it is. Backward sends the
    gradient of the sum down both paths and adds what they return:
    dL/dx = body.backward(g) + shortcut.backward(g), with g the gradient after the ReLU.
    Keys: "body.*", "shortcut.*", as the torch block of the same layout.
    """

    def __init__(self, body: Module, shortcut: Module | None = None, relu: bool = True):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else Sequential()
        self.relu = ReLU() if relu else Sequential()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))

    def backward(self, grad_output):
        g = self.relu.backward(grad_output)
        return self.body.backward(g) + self.shortcut.backward(g)


def fuse_relu(model: Module, enable: bool = True) -> Module:
    """Let the layer next to each ReLU apply it, saving whole passes over the largest arrays; the
    results are identical, and every module (so every state_dict key and summary row) stays.

    - ReLU then MaxPool2d without padding (or AdaptiveMaxPool2d): ReLU and max commute,
      max(relu(a), relu(b)) = relu(max(a, b)), so the pool applies it to its output, 1/4 as large.
    - BatchNorm or a max-pool, then ReLU: the layer applies it in place to the output it has just
      made (for a max-pool, the same function as above: ReLU after or before it).

    ``enable=False`` undoes it. Returns ``model``.
    """
    for m in model.modules():
        for name in ("absorbed", "relu_after"):
            m.__dict__.pop(name, None)
    if not enable:
        return model
    for seq in (m for m in model.modules() if isinstance(m, Sequential)):
        layers = list(seq)
        for i, layer in enumerate(layers):
            if not isinstance(layer, ReLU):
                continue
            after = layers[i + 1] if i + 1 < len(layers) else None
            before = layers[i - 1] if i > 0 else None
            if isinstance(after, AdaptiveMaxPool2d) or (
                isinstance(after, MaxPool2d) and shapes.pair(after.padding, "padding") == (0, 0)
            ):
                after.relu_after = layer.absorbed = True
            elif isinstance(before, (BatchNorm1d, BatchNorm2d, MaxPool2d, AdaptiveMaxPool2d)):
                before.relu_after = layer.absorbed = True
    return model

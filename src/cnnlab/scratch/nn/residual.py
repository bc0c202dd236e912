"""The residual block: the skip path of a residual network."""

from __future__ import annotations

from cnnlab.scratch.module import Module, Sequential
from cnnlab.scratch.nn.activation import ReLU

__all__ = ["ResidualBlock"]


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

"""ReLU, and the fused ReLU that a max-pool or a batch norm applies to its own output
(``relu_after``; ``cnnlab.scratch.nn.fusion`` decides where)."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import functional as F
from cnnlab.scratch.module import Module

__all__ = ["ReLU", "relu_after", "relu_after_backward"]


class ReLU(Module):
    """``max(x, 0)``. NOTE: ``inplace`` is accepted for torch's signature; the output is always new.

    ``absorbed`` (set by ``fuse_relu``): the layer before or after applies it, and this one passes
    values and gradients through unchanged.
    """

    absorbed = False

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        if self.absorbed:
            self._cache = True
            return x
        out = F.relu(x)
        self._cache = out if self.training else None  # out > 0 exactly where x > 0
        return out

    def backward(self, grad_output):
        saved = self._saved()
        return grad_output if self.absorbed else F.relu_backward(grad_output, saved)


def relu_after(layer, out: np.ndarray) -> np.ndarray:
    """``out`` with a fused ReLU applied in place when ``layer.relu_after`` (see ``fuse_relu``)."""
    return np.maximum(out, 0, out=out) if getattr(layer, "relu_after", False) else out


def relu_after_backward(layer, grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad`` where the fused ReLU's output ``out`` is positive, else 0, in a new array."""
    if not getattr(layer, "relu_after", False):
        return grad
    # out >= 0, so sign(out) is the 0/1 mask: float times float is about 1.5x faster in NumPy than
    # float times bool (a casting loop), and the mask's memory takes the product.
    mask = np.sign(out)
    return np.multiply(mask, grad, out=mask)

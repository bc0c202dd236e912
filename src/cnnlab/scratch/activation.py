"""ReLU, forward and backward, and its layer; and the fused ReLU that a max-pool or a batch norm
applies to its own output (``relu_after``; ``cnnlab.scratch.nn.fuse_relu`` decides where).

    relu:  y = max(x, 0)        dL/dx = dL/dy * [x > 0]
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.checks import float_array
from cnnlab.scratch.module import Module

__all__ = ["relu", "relu_backward", "ReLU", "relu_after", "relu_after_backward"]


def relu(input) -> np.ndarray:
    """``max(x, 0)``, elementwise (NaN stays NaN, as in torch)."""
    x = float_array(input, "input")
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def relu_backward(grad_output, input) -> np.ndarray:
    """``dL/dy * [x > 0]``: zero gradient where the input was not positive, as torch.

    NOTE: a product with the mask, much faster than ``np.where``; so a NaN or infinite gradient
    where x <= 0 gives NaN (torch: 0), which matters only once training has diverged.
    """
    x = float_array(input, "input")
    gy = float_array(grad_output, "grad_output", x.dtype)
    return gy * (x > 0)


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
        out = relu(x)
        self._cache = out if self.training else None  # out > 0 exactly where x > 0
        return out

    def backward(self, grad_output):
        saved = self._saved()
        return grad_output if self.absorbed else relu_backward(grad_output, saved)


def relu_after(layer: Module, out: np.ndarray) -> np.ndarray:
    """``out`` with a fused ReLU applied in place when ``layer.relu_after`` (see ``fuse_relu``)."""
    return np.maximum(out, 0, out=out) if getattr(layer, "relu_after", False) else out


def relu_after_backward(layer: Module, grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad`` where the fused ReLU's output ``out`` is positive, else 0, in a new array."""
    if not getattr(layer, "relu_after", False):
        return grad
    # out >= 0, so sign(out) is the 0/1 mask: NumPy multiplies float by float faster than float by
    # bool (which goes through a casting loop), and the mask's memory takes the product.
    mask = np.sign(out)
    return np.multiply(mask, grad, out=mask)

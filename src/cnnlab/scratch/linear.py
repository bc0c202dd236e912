"""The fully connected op, forward and backward, its layer, and the flattening before it.

linear:  y = x W^T + b      dL/dx = dL/dy W,   dL/dW = dL/dy^T x,   dL/db = sum dL/dy
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.checks import float_array
from cnnlab.scratch.module import Module, generator, uniform

__all__ = ["linear", "linear_backward", "Linear", "Flatten"]


def _linear_args(input, weight, bias):
    x = float_array(input, "input")
    w = float_array(weight, "weight", x.dtype)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear needs input (*, in_features) and weight (out_features, in_features). "
            f"Received: input.shape={x.shape}, weight.shape={w.shape}"
        )
    b = None if bias is None else float_array(bias, "bias", x.dtype)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},). Received: bias.shape={b.shape}")
    return x, w, b


def linear(input, weight, bias=None) -> np.ndarray:
    """``y = x W^T + b``: input (*, in_features), weight (out_features, in_features) -> (*, out_features)."""
    x, w, b = _linear_args(input, weight, bias)
    out = x @ w.T
    return out + b if b is not None else out


def linear_backward(grad_output, input, weight, bias=None):
    """``(grad_input, grad_weight, grad_bias or None)`` of linear."""
    x, w, b = _linear_args(input, weight, bias)
    gy = float_array(grad_output, "grad_output", x.dtype)
    if gy.shape != x.shape[:-1] + (w.shape[0],):
        raise ValueError(
            f"grad_output must have shape {x.shape[:-1] + (w.shape[0],)}. "
            f"Received: grad_output.shape={gy.shape}"
        )
    gy2, x2 = gy.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])  # (M, out), (M, in)
    grad_bias = gy2.sum(axis=0) if b is not None else None
    return gy @ w, gy2.T @ x2, grad_bias


class Linear(Module):
    """``y = x W^T + b``; weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        rng = generator(rng)
        self.weight = uniform((out_features, in_features), in_features, rng, dtype)
        self.bias = uniform((out_features,), in_features, rng, dtype) if bias else None

    def forward(self, x):
        self._cache = x if self.training else None
        return linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output):
        grad_input, grad_w, grad_b = linear_backward(
            grad_output, self._saved(), self.weight.data, None if self.bias is None else self.bias.data
        )
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_input

    def extra_repr(self):
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one, as torch.nn.Flatten."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        x = np.asarray(x)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        self._cache = x.shape if self.training else None
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])  # e.g. (N, C*H*W)

    def backward(self, grad_output):
        return np.asarray(grad_output).reshape(self._saved())

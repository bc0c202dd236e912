"""The fully connected layer and the flattening before it."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import functional as F
from cnnlab.scratch.module import Module, generator, uniform

__all__ = ["Linear", "Flatten"]


class Linear(Module):
    """``y = x W^T + b``; weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        rng = generator(rng)
        self.weight = uniform((out_features, in_features), in_features, rng, dtype)
        self.bias = uniform((out_features,), in_features, rng, dtype) if bias else None

    def forward(self, x):
        self._cache = x if self.training else None
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output):
        grad_input, grad_w, grad_b = F.linear_backward(
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

"""Batch norm layers (Ioffe & Szegedy 2015) over ``cnnlab.scratch.norm``: torch's constructor
arguments, parameters, buffers and state_dict keys."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import norm
from cnnlab.scratch.module import Module, Parameter
from cnnlab.scratch.nn.activation import relu_after, relu_after_backward

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Batch norm over axis 1, torch's constructor arguments, parameters and buffers.

    With ``momentum=None`` the running statistics are a cumulative average (the factor is
    1 / num_batches_tracked), as in torch. Without ``track_running_stats`` there are no buffers
    and batch statistics normalise in eval mode too.
    """

    dims: tuple[int, ...] = ()

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, dtype=np.float32
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        tracked = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None)

    def _factor(self) -> float:
        """The momentum of this step; counts the batch in training mode, as torch does."""
        if not (self.training and self.track_running_stats):
            return 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked += 1  # a 0-d int64 array, updated in place
        return 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim not in self.dims:
            raise ValueError(
                f"{type(self).__name__} expects {' or '.join(f'{d}-D' for d in self.dims)} input. "
                f"Received: input.shape={x.shape}"
            )
        momentum = self._factor()
        batch_stats = self.training or self.running_mean is None  # untracked: batch statistics always
        stats = (self.running_mean, self.running_var)  # updated in place in training mode
        w, b = (None, None) if not self.affine else (self.weight.data, self.bias.data)
        x, w, b = norm._setup(x, *stats, w, b, batch_stats, momentum, self.eps)
        shape = (x.shape[1], x.size // x.shape[1])  # (C, M)
        space = self.workspace("centred", shape, x.dtype) if self.training else None
        y, centred, invstd = norm._normalise(x, *stats, w, b, batch_stats, momentum, self.eps, space)
        y = relu_after(self, y)  # (C, M), a new array
        self._cache = (centred, invstd, x.shape, batch_stats, y) if self.training else None
        return norm.from_channels(y, x.shape)

    def backward(self, grad_output):
        """The input's gradient; one backward per forward (it is computed in the forward's memory)."""
        centred, invstd, x_shape, batch_stats, y = self._saved()
        self._cache = None
        grad = norm.to_channels(np.asarray(grad_output).reshape(x_shape))  # (C, M)
        gc = relu_after_backward(self, grad, y)
        w = None if not self.affine else self.weight.data
        own = gc is not grad  # a fresh array from the fused ReLU's mask, else the caller's
        grad_input, grad_w, grad_b = norm._backward(gc, centred, invstd, w, self.affine, batch_stats, own)
        if self.affine:
            self.weight.accumulate(grad_w)
            self.bias.accumulate(grad_b)
        return norm.from_channels(grad_input, x_shape)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, per channel C."""

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, per channel C."""

    dims = (4,)

"""Batch normalisation (Ioffe & Szegedy 2015), forward and backward side by side.

For input x (N, C, *) and each channel c, over the M = N * prod(*) values of that channel:

    training:  mu = mean(x),  var = mean((x - mu)^2)          (the biased variance normalises)
    eval:      mu = running_mean,  var = running_var
    xhat = (x - mu) / sqrt(var + eps),     y = w * xhat + b    (w = 1, b = 0 when not affine)

In training mode the running statistics, when given, are updated in place as torch does:

    running_mean <- momentum * mu + (1 - momentum) * running_mean
    running_var  <- momentum * var * M / (M - 1) + (1 - momentum) * running_var    (unbiased)

Backward, with g = dL/dy, sums and means over the M values of a channel:

    dL/db = sum g        dL/dw = sum g * xhat
    training:  dL/dx = w / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))
    eval:      dL/dx = w / sqrt(var + eps) * g          (the statistics are constants)

Layout: every pass works on a (C, M) array, the channel's values contiguous: (N, C, *) is moved
to (C, *, N), which for 4-D inputs is the (C, H, W, N) layout of conv and pool (windows.py), so
a batch norm between them copies nothing. Outputs go back as (N, C, *) views of that memory.

The layers ``BatchNorm1d`` and ``BatchNorm2d`` have torch's constructor arguments, parameters,
buffers and state_dict keys; they keep x - mean for the backward (which overwrites it), and may
apply a fused ReLU to their output (``cnnlab.scratch.nn.fuse_relu``).
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.activation import relu_after, relu_after_backward
from cnnlab.scratch.checks import float_array
from cnnlab.scratch.module import Module, Parameter

__all__ = ["batch_norm", "batch_norm_backward", "BatchNorm1d", "BatchNorm2d"]


def to_channels(x: np.ndarray) -> np.ndarray:
    """(N, C, *) -> contiguous (C, M) with M = N * prod(*); free for (C, *, N) memory."""
    moved = x.transpose(1, *range(2, x.ndim), 0)  # (C, *, N)
    return np.ascontiguousarray(moved).reshape(x.shape[1], -1)  # (C, M)


def from_channels(a: np.ndarray, shape) -> np.ndarray:
    """(C, M) -> an (N, C, *) view of it, ``shape`` being (N, C, *); the inverse of ``to_channels``."""
    ndim = len(shape)
    moved = a.reshape(shape[1], *shape[2:], shape[0])  # (C, *, N)
    return moved.transpose(ndim - 1, 0, *range(1, ndim - 1))  # (N, C, *)


def _vector(value, name, channels, dtype):
    if value is None:
        return None
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if value.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},). Received: {name}.shape={value.shape}")
    return value if dtype is None else value.astype(dtype, copy=False)


def _setup(input, running_mean, running_var, weight, bias, training, momentum, eps):
    """Check the arguments; return (x, w, b) with w and b cast to x's dtype (None when absent)."""
    for name, value in (("momentum", momentum), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number. Received: {name}={value!r}")
    if eps < 0 or (training and eps == 0):
        need = "positive in training mode" if training else "non-negative"
        raise ValueError(f"eps must be {need}. Received: eps={eps!r}")
    x = float_array(input, "input")
    if x.ndim < 2:
        raise ValueError(f"batch_norm needs input (N, C, *). Received: input.shape={x.shape}")
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        _vector(value, name, channels, None)
        if value is None and not training:
            raise ValueError(f"{name} must be given in evaluation mode (training=False)")
        if value is not None and training and not isinstance(value, np.ndarray):
            raise ValueError(f"{name} must be a NumPy array (it is updated in place). Received: {value!r}")
    if training and x.size // max(channels, 1) < 2:
        raise ValueError(
            f"batch_norm needs more than 1 value per channel when training. Received: input.shape={x.shape}"
        )
    w = _vector(weight, "weight", channels, x.dtype)
    b = _vector(bias, "bias", channels, x.dtype)
    return x, w, b


def _statistics(xc, running_mean, running_var, training, momentum, eps, out=None):
    """(centred (C, M) in ``out`` when given, mean (C,), 1/sqrt(var + eps) (C,)); updates the
    running statistics."""
    m = xc.shape[1]
    if training:
        mean = xc.mean(axis=1)  # (C,)
        centred = np.subtract(xc, mean[:, None], out=out)
        var = np.einsum("cm,cm->c", centred, centred) / m  # biased
        if running_mean is not None:
            running_mean[...] = momentum * mean + (1 - momentum) * running_mean
        if running_var is not None:
            running_var[...] = momentum * (var * (m / (m - 1))) + (1 - momentum) * running_var
    else:
        mean, var = running_mean.astype(xc.dtype), running_var.astype(xc.dtype)
        centred = np.subtract(xc, mean[:, None], out=out)
    invstd = (1 / np.sqrt(var + eps)).astype(xc.dtype)
    return centred, mean, invstd


def _normalise(x, running_mean, running_var, w, b, training, momentum, eps, out=None):
    """(y (C, M), centred (C, M), invstd (C,)) for input x (N, C, *): centred = x - mean goes into
    ``out`` if given, and y = centred * (invstd * w) + b is one new array.

    The backward needs xhat = centred * invstd; it takes centred and invstd instead, which saves
    the forward a pass over xhat (and the backward folds invstd into its per-channel factors).
    """
    xc = to_channels(x)
    centred, _, invstd = _statistics(xc, running_mean, running_var, training, momentum, eps, out)
    scale = invstd if w is None else invstd * w  # (C,)
    y = np.multiply(centred, scale[:, None])
    if b is not None:
        y += b[:, None]
    return y, centred, invstd


def _backward(gc, centred, invstd, w, has_bias, training, own=False):
    """(grad_input (C, M), grad_weight, grad_bias) from g and centred = x - mean as (C, M) arrays.

    ``centred`` is overwritten (it serves one backward); with ``own`` the caller gives up ``gc``
    too, and the result is computed in its memory: four passes and no new array.
    """
    g_sum = gc.sum(axis=1)  # (C,)
    g_xhat = np.einsum("cm,cm->c", gc, centred) * invstd  # (C,): sum g * xhat
    grad_weight = g_xhat if w is not None else None
    grad_bias = g_sum if has_bias else None
    scale = invstd if w is None else invstd * w  # (C,)
    grad_input = gc if own else np.empty_like(gc)
    np.multiply(gc, scale[:, None], out=grad_input)
    if not training:
        return grad_input, grad_weight, grad_bias
    m = gc.shape[1]
    term = np.multiply(centred, (-scale * invstd * g_xhat / m)[:, None], out=centred)  # xhat * ...
    term += (-scale * g_sum / m)[:, None]
    grad_input += term
    return grad_input, grad_weight, grad_bias


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
) -> np.ndarray:
    """Batch normalisation, as ``torch.nn.functional.batch_norm`` (see the module docstring).

    input (N, C, *), the rest (C,) or None; returns (N, C, *) in the input's dtype. In training
    mode the batch statistics normalise and ``running_mean`` / ``running_var`` (NumPy arrays, or
    None) are updated in place; in eval mode the running statistics normalise.
    """
    x, w, b = _setup(input, running_mean, running_var, weight, bias, training, momentum, eps)
    y, _, _ = _normalise(x, running_mean, running_var, w, b, training, momentum, eps)
    return from_channels(y, x.shape)


def batch_norm_backward(
    grad_output,
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
):
    """``(grad_input, grad_weight or None, grad_bias or None)`` of batch_norm.

    Takes batch_norm's own arguments; the statistics are recomputed from ``input`` in training
    mode, and NOTE: the running statistics are left alone here (only the forward updates them).
    """
    x, w, b = _setup(input, running_mean, running_var, weight, bias, training, momentum, eps)
    gy = float_array(grad_output, "grad_output", x.dtype)
    if gy.shape != x.shape:
        raise ValueError(f"grad_output must have the input's shape {x.shape}. Received: {gy.shape}")
    stats = (None, None) if training else (running_mean, running_var)
    _, centred, invstd = _normalise(x, *stats, None, None, training, momentum, eps)
    grad_input, grad_weight, grad_bias = _backward(
        to_channels(gy), centred, invstd, w, b is not None, training
    )
    return from_channels(grad_input, x.shape), grad_weight, grad_bias


class _BatchNorm(Module):
    """Batch norm over axis 1, torch's constructor arguments, parameters and buffers.

    With ``momentum=None`` the running statistics are a cumulative average (the factor is
    1 / num_batches_tracked), as in torch. Without ``track_running_stats`` there are no buffers
    and batch statistics normalise in eval mode too.
    """

    dims: tuple[int, ...] = ()
    # Registered buffers (set by register_buffer); None without track_running_stats.
    running_mean: np.ndarray | None
    running_var: np.ndarray | None
    num_batches_tracked: np.ndarray | None

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
        if not (self.training and self.track_running_stats) or self.num_batches_tracked is None:
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
        x, w, b = _setup(x, *stats, w, b, batch_stats, momentum, self.eps)
        shape = (x.shape[1], x.size // x.shape[1])  # (C, M)
        space = self.workspace("centred", shape, x.dtype) if self.training else None
        y, centred, invstd = _normalise(x, *stats, w, b, batch_stats, momentum, self.eps, space)
        y = relu_after(self, y)  # (C, M), a new array
        self._cache = (centred, invstd, x.shape, batch_stats, y) if self.training else None
        return from_channels(y, x.shape)

    def backward(self, grad_output):
        """The input's gradient; one backward per forward (it is computed in the forward's memory)."""
        centred, invstd, x_shape, batch_stats, y = self._saved()
        self._cache = None
        grad = to_channels(np.asarray(grad_output).reshape(x_shape))  # (C, M)
        gc = relu_after_backward(self, grad, y)
        w = None if not self.affine else self.weight.data
        own = gc is not grad  # a fresh array from the fused ReLU's mask, else the caller's
        grad_input, grad_w, grad_b = _backward(gc, centred, invstd, w, self.affine, batch_stats, own)
        if self.affine:
            self.weight.accumulate(grad_w)
            self.bias.accumulate(grad_b)
        return from_channels(grad_input, x_shape)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, per channel C."""

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, per channel C."""

    dims = (4,)

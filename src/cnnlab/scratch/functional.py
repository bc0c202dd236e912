"""The functional ops of the scratch engine, as ``torch.nn.functional`` names them.

Every op is a pure function on NumPy arrays, and beside it its backward, which takes the
output gradient first, then the forward's own arguments, and returns the gradient of every
differentiable input. Convolution lives in ``conv.py`` and pooling in ``pool.py``; the
small ops are here:

    linear:        y = x W^T + b            dL/dx = dL/dy W,  dL/dW = dL/dy^T x,  dL/db = sum dL/dy
    relu:          y = max(x, 0)            dL/dx = dL/dy * [x > 0]
    log_softmax:   y = x - max x - log sum exp(x - max x)      dL/dx = dL/dy - exp(y) sum dL/dy
    cross_entropy: with p = softmax(x), targets smoothed to t = (1 - e) onehot(y) + e / C,
                   loss = -sum_c t_c log p_c     dloss/dx = p - t   (divided by N for 'mean')
    dropout:       y = x * m / (1 - p), m_i ~ Bernoulli(1 - p)     dL/dx = dL/dy * m / (1 - p)

Batch norm lives in ``norm.py`` and adaptive pooling in ``adaptive.py``; all are re-exported here.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch._checks import float_array
from cnnlab.scratch.adaptive import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from cnnlab.scratch.conv import conv2d, conv2d_backward, conv2d_reference
from cnnlab.scratch.norm import batch_norm, batch_norm_backward
from cnnlab.scratch.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv2d_reference",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "linear",
    "linear_backward",
    "relu",
    "relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
]


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


def relu(input) -> np.ndarray:
    """``max(x, 0)``, elementwise (NaN stays NaN, as in torch)."""
    x = float_array(input, "input")
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def relu_backward(grad_output, input) -> np.ndarray:
    """``dL/dy * [x > 0]``: zero gradient where the input was not positive, as torch.

    NOTE: a product with the mask, five times faster than ``np.where``; so a NaN or infinite
    gradient where x <= 0 gives NaN (torch: 0), which matters only once training has diverged.
    """
    x = float_array(input, "input")
    gy = float_array(grad_output, "grad_output", x.dtype)
    return gy * (x > 0)


def _dim(x, dim, name="dim"):
    if (
        isinstance(dim, bool)
        or not isinstance(dim, (int, np.integer))
        or not -max(x.ndim, 1) <= dim < max(x.ndim, 1)
    ):
        raise ValueError(f"{name} out of range for a {x.ndim}-D input. Received: {name}={dim!r}")
    return int(dim) % max(x.ndim, 1)


def log_softmax(input, dim) -> np.ndarray:
    """``x - max(x) - log(sum(exp(x - max(x))))`` along ``dim`` (shifted for stability)."""
    x = float_array(input, "input")
    dim = _dim(x, dim)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_output, input, dim) -> np.ndarray:
    """``dL/dy - softmax(x) * sum(dL/dy)`` along ``dim``."""
    y = log_softmax(input, dim)
    gy = float_array(grad_output, "grad_output", y.dtype)
    return gy - np.exp(y) * gy.sum(axis=_dim(y, dim), keepdims=True)


def _cross_entropy_terms(input, target, reduction, label_smoothing):
    """(log-probabilities, smoothed target distribution, class axis, loss scale)."""
    x = float_array(input, "input")
    if x.ndim < 1:
        raise ValueError(f"input must have a class axis. Received: input.shape={x.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none'. Received: reduction={reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"label_smoothing must be between 0.0 and 1.0. Received: label_smoothing={label_smoothing!r}"
        )
    axis = 1 if x.ndim >= 2 else 0
    classes = x.shape[axis]
    t = np.asarray(target)
    if np.issubdtype(t.dtype, np.integer):  # class indices, shape of input without the class axis
        if t.shape != x.shape[:axis] + x.shape[axis + 1 :]:
            raise ValueError(
                f"target must have shape {x.shape[:axis] + x.shape[axis + 1 :]}. "
                f"Received: target.shape={t.shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= classes):
            raise ValueError(
                f"target must hold class indices in [0, {classes}). "
                f"Received: target values from {t.min()} to {t.max()}"
            )
        t = np.expand_dims(t, axis) == np.arange(classes).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    elif t.shape != x.shape:  # class probabilities
        raise ValueError(
            f"target must hold integer class indices or probabilities shaped like input. "
            f"Received: target.shape={t.shape}, target.dtype={t.dtype}"
        )
    t = t.astype(x.dtype) * (1.0 - label_smoothing) + label_smoothing / classes
    scale = 1.0 / (x.size // classes) if reduction == "mean" and x.size else 1.0
    return log_softmax(x, axis), t, axis, scale


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits (N, C) or (C,) against class indices (N,) or probabilities (N, C).

    ``loss_n = -sum_c t_nc log softmax(x_n)_c`` with targets smoothed as in the module
    docstring; reduced by 'mean' over N (a float), 'sum', or 'none' (an array of N losses).
    NOTE: torch's ``weight`` and ``ignore_index`` are not supported.
    """
    logp, t, axis, scale = _cross_entropy_terms(input, target, reduction, label_smoothing)
    losses = -(t * logp).sum(axis=axis)
    if reduction == "none":
        return losses
    return losses.sum(dtype=logp.dtype) * logp.dtype.type(scale)


def cross_entropy_backward(input, target, reduction="mean", label_smoothing=0.0) -> np.ndarray:
    """Gradient of cross_entropy with respect to ``input``: ``(softmax(x) - t) * scale``.

    scale is 1/N for 'mean' and 1 for 'sum'. NOTE: for 'none' this is the gradient of the sum of
    the per-sample losses (an upstream gradient of ones); multiply row-wise for other weights.
    """
    logp, t, _, scale = _cross_entropy_terms(input, target, reduction, label_smoothing)
    return (np.exp(logp) - t) * logp.dtype.type(scale)


def _probability(p) -> float:
    if not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:  # a bool too, as torch
        raise ValueError(f"dropout probability has to be between 0 and 1. Received: p={p!r}")
    return float(p)


def dropout_mask(shape, p, generator, dtype=np.float32) -> np.ndarray:
    """The scaled mask of dropout: 1 / (1 - p) where a value is kept (probability 1 - p), else 0.

    Drawn as ``generator.random(shape) >= p`` (float64 uniforms), so a Generator in the same state
    gives the same mask. p = 1 drops everything (an all-zero mask, as torch gives).
    """
    p, dtype = _probability(p), np.dtype(dtype).type
    if not isinstance(generator, np.random.Generator):
        raise ValueError(f"generator must be a numpy.random.Generator. Received: generator={generator!r}")
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    keep = generator.random(shape) >= p
    return keep.astype(dtype) * (dtype(1) / dtype(1 - p))  # torch's scale, rounded as torch rounds it


def dropout(input, p=0.5, training=True, generator=None) -> np.ndarray:
    """Dropout, as ``torch.nn.functional.dropout``: in training mode each value is zeroed with
    probability p and the rest scaled by 1 / (1 - p), so the expectation is unchanged; identity
    in eval mode (``training=False``) or for p = 0.

    NOTE: unlike torch, the mask comes from ``generator``, a NumPy Generator (torch draws from its
    global generator); ``dropout_backward`` given a Generator in the same state draws the same mask.
    """
    x = float_array(input, "input")
    if not training or _probability(p) == 0:
        return x
    return x * dropout_mask(x.shape, p, generator, x.dtype)


def dropout_backward(grad_output, input, p=0.5, training=True, generator=None) -> np.ndarray:
    """``dL/dy * mask``: the gradient flows through the kept values, scaled by 1 / (1 - p).

    ``generator`` must be in the state the forward drew from (e.g. a fresh Generator with the same seed).
    """
    x = float_array(input, "input")
    gy = float_array(grad_output, "grad_output", x.dtype)
    if gy.shape != x.shape:
        raise ValueError(f"grad_output must have the input's shape {x.shape}. Received: {gy.shape}")
    return dropout(gy, p, training, generator)

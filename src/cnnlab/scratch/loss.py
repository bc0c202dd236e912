"""Log-softmax and cross-entropy, forward and backward side by side.

log_softmax:    y = x - max x - log sum exp(x - max x)      dL/dx = dL/dy - exp(y) sum dL/dy
cross_entropy:  with p = softmax(x), targets smoothed to t = (1 - e) onehot(y) + e / C,
                loss = -sum_c t_c log p_c      dloss/dx = p - t   (divided by N for 'mean')
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.checks import float_array

__all__ = ["log_softmax", "log_softmax_backward", "cross_entropy", "cross_entropy_backward"]


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

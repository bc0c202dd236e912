"""Dropout (Srivastava et al. 2014), forward and backward, and its layer; the masks are drawn from
a NumPy Generator.

    dropout:  y = x * m / (1 - p),  m_i ~ Bernoulli(1 - p)      dL/dx = dL/dy * m / (1 - p)
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.checks import float_array
from cnnlab.scratch.module import Module, generator

__all__ = ["dropout", "dropout_backward", "dropout_mask", "Dropout"]


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


class Dropout(Module):
    """Dropout with probability ``p`` in training mode, identity in eval mode.

    NOTE: unlike torch, the masks come from ``self.generator``, a NumPy Generator (``rng`` seeds
    it); a training loop that reseeds it per epoch makes the masks reproducible. ``inplace`` is
    accepted for torch's signature; the output is always new.
    """

    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        dropout_mask((0,), p, np.random.default_rng(0))  # checks p
        self.p, self.inplace, self.generator = p, inplace, generator(rng)

    def forward(self, x):
        x = np.asarray(x)
        if not self.training or self.p == 0:
            self._cache = 1 if self.training else None  # backward passes the gradient through
            return x
        mask = dropout_mask(x.shape, self.p, self.generator, x.dtype)
        self._cache = mask
        return x * mask

    def backward(self, grad_output):
        return grad_output * self._saved()

    def extra_repr(self):
        return f"p={self.p}"

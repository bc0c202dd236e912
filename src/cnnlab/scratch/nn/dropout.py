"""Dropout (Srivastava et al. 2014), its masks drawn from a NumPy Generator."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import functional as F
from cnnlab.scratch.module import Module, generator

__all__ = ["Dropout"]


class Dropout(Module):
    """Dropout with probability ``p`` in training mode, identity in eval mode.

    NOTE: unlike torch, the masks come from ``self.generator``, a NumPy Generator (``rng`` seeds
    it); a training loop that reseeds it per epoch makes the masks reproducible. ``inplace`` is
    accepted for torch's signature; the output is always new.
    """

    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        F.dropout_mask((0,), p, np.random.default_rng(0))  # checks p
        self.p, self.inplace, self.generator = p, inplace, generator(rng)

    def forward(self, x):
        x = np.asarray(x)
        if not self.training or self.p == 0:
            self._cache = 1 if self.training else None  # backward passes the gradient through
            return x
        mask = F.dropout_mask(x.shape, self.p, self.generator, x.dtype)
        self._cache = mask
        return x * mask

    def backward(self, grad_output):
        return grad_output * self._saved()

    def extra_repr(self):
        return f"p={self.p}"

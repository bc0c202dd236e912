"""The functional ops of the scratch engine, as ``torch.nn.functional`` names them.

Every op is a pure function on NumPy arrays, and beside it its backward, which takes the output
gradient first, then the forward's own arguments, and returns the gradient of every differentiable
input. Each lives with its layer in the module of its kind, whose docstring gives the equations:

    conv        conv2d, conv2d_backward, conv2d_reference (the notebook's loops)
    pool        max_pool2d, avg_pool2d
    adaptive    adaptive_max_pool2d, adaptive_avg_pool2d
    norm        batch_norm
    linear      linear
    activation  relu
    dropout     dropout, dropout_mask
    loss        log_softmax, cross_entropy (no layer: the training step calls them)

All are re-exported here: ``from cnnlab.scratch import functional as F``.
"""

from __future__ import annotations

from cnnlab.scratch.activation import relu, relu_backward
from cnnlab.scratch.adaptive import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from cnnlab.scratch.conv import conv2d, conv2d_backward, conv2d_reference
from cnnlab.scratch.dropout import dropout, dropout_backward, dropout_mask
from cnnlab.scratch.linear import linear, linear_backward
from cnnlab.scratch.loss import cross_entropy, cross_entropy_backward, log_softmax, log_softmax_backward
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

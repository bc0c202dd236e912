"""cnnlab.scratch: a NumPy-only CNN engine that matches PyTorch (no torch import, ever).

Layers of the package:
  checks, windows
              argument checks; strided windows shared by conv and pool, in the (C, H, W, N) layout
  module      Parameter, Module (parameters, buffers, torch's state_dict keys), Sequential
  conv, pool, adaptive, norm, linear, activation, dropout, loss
              one kind of op each: the op, its ``*_backward`` beside it, and its layer (conv2d and
              Conv2d; max_pool2d, avg_pool2d, MaxPool2d, AvgPool2d; adaptive_max_pool2d,
              adaptive_avg_pool2d and their layers; batch_norm, BatchNorm1d, BatchNorm2d; linear,
              Linear, Flatten; relu, ReLU; dropout, Dropout; log_softmax and cross_entropy);
              winograd: Winograd F(2x2, 3x3) for conv2d's 3x3 stride-1 cases
  functional  every op, as torch.nn.functional names them; conv2d_reference is the notebook's loops
  nn          every layer, as torch.nn names them, and ResidualBlock and fuse_relu
  optim       SGD and Adam with torch.optim's update rules; clip_grad_norm_
  augment     random translation (zero or reflect padding), flips and cutout of NumPy batches,
              drawn from a NumPy Generator; fixed shifts for test-time augmentation
  gradcheck   central-difference gradients

Every registry model is defined once, in ``cnnlab.models``, and built with these layers by
``cnnlab.models.build_model(name, input_shape, num_classes, "numpy")``.

Training, in full::

    from cnnlab import scratch
    from cnnlab.models import build_model
    model = build_model("convnet", (1, 28, 28), 10, "numpy", rng=0)    # float32
    opt = scratch.optim.Adam(model.parameters(), lr=1e-3)
    loss, logits = scratch.train_step(model, opt, X, y)    # X (N, 1, 28, 28) float32, y (N,) int
    loss, accuracy = scratch.evaluate(model, X_val, y_val)  # eval mode, in batches
"""

from __future__ import annotations

from typing import cast

import numpy as np

from cnnlab.scratch import augment, functional, gradcheck, nn, optim
from cnnlab.scratch.module import SkipsInputGrad

__all__ = [
    "functional",
    "nn",
    "optim",
    "augment",
    "gradcheck",
    "train_step",
    "predict",
    "evaluate",
]


def train_step(
    model: nn.Module, optimizer: optim.Optimizer, X, y, label_smoothing: float = 0.0, max_norm=None
):
    """One step: forward in training mode, mean cross-entropy, backward, clipping the gradients'
    global norm to ``max_norm`` when given, ``optimizer.step()``.

    X (N, C, H, W) in the model's dtype, y (N,) integer labels. Returns ``(loss, logits)``:
    the loss as a Python float and the (N, classes) logits computed before the update.
    """
    model.train()
    optimizer.zero_grad()
    logits = model(X)
    loss = functional.cross_entropy(logits, y, label_smoothing=label_smoothing)
    grad = functional.cross_entropy_backward(logits, y, label_smoothing=label_smoothing)
    if model.skips_input_grad:  # X is data: its gradient is not needed
        cast(SkipsInputGrad, model).backward(grad, input_grad=False)
    else:
        model.backward(grad)
    if max_norm is not None:
        optim.clip_grad_norm_(optimizer.params, max_norm)
    optimizer.step()
    return float(loss), logits


def predict(model: nn.Module, X, batch_size: int = 1000) -> np.ndarray:
    """The (N, classes) logits of ``model`` in eval mode (nothing kept for backward), in batches."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, X, y, batch_size: int = 1000) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` on X, y, computed in eval mode."""
    logits = predict(model, X, batch_size)
    loss = functional.cross_entropy(logits, y)
    return float(loss), float(np.mean(logits.argmax(axis=1) == np.asarray(y)))

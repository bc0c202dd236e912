"""Adaptive max and average pooling: an output of a given size, whatever the input's size.

For input size H and output size O (and likewise W), output row i pools the input rows

    start(i) = floor(i * H / O)    to    end(i) = ceil((i + 1) * H / O)   (end excluded)

so windows cover the input and may overlap by one row when O does not divide H; with O = 1
(global pooling, as vgg-mini's head) the window is the whole plane. For each output cell:

    avg:  y = mean of the window              dL/dx += dL/dy / (window area), over the window
    max:  y = max of the window               dL/dx += dL/dy at the (first) maximum

As in torch a NaN counts as a maximum (the last NaN of a window wins). The arrays are in the
(C, H, W, N) layout of windows.py; outputs and input gradients are NCHW views of it.

The layers ``AdaptiveMaxPool2d`` and ``AdaptiveAvgPool2d`` take torch's arguments;
``AdaptiveMaxPool2d`` keeps its forward's argmax for the backward, and may apply a fused ReLU to
its output (``cnnlab.scratch.nn.fuse_relu``).
"""

from __future__ import annotations

import operator

import numpy as np

from cnnlab.scratch.activation import relu_after, relu_after_backward
from cnnlab.scratch.checks import batched, float_array
from cnnlab.scratch.module import Module
from cnnlab.scratch.windows import from_planes, to_planes

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool2d",
]


def output_hw(output_size, input_hw) -> tuple[int, int]:
    """``output_size`` (an int, or a pair whose entries are ints or None for "the input's size")
    as (H_out, W_out); what torch refuses is refused with the value echoed."""
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    try:
        if len(items) != 2 or any(isinstance(v, bool) for v in items):
            raise TypeError
        out = tuple(size if v is None else operator.index(v) for v, size in zip(items, input_hw))
    except TypeError:
        raise ValueError(
            f"output_size must be an int or a pair of ints (or None). Received: output_size={output_size!r}"
        ) from None
    if min(out) < 0:
        raise ValueError(f"output_size must be non-negative. Received: output_size={output_size!r}")
    return out[0], out[1]


def _bounds(size: int, out: int) -> list[tuple[int, int]]:
    """(start, end) of each of the ``out`` windows over ``size`` positions."""
    return [((i * size) // out, -(-(i + 1) * size // out)) for i in range(out)]


def _setup(input, output_size, op):
    x, unbatched = batched(float_array(input, "input"), op)
    out_hw = output_hw(output_size, x.shape[2:])
    cells = [(r, c) for r in _bounds(x.shape[2], out_hw[0]) for c in _bounds(x.shape[3], out_hw[1])]
    return x, unbatched, out_hw, cells


def _block(planes, rows, cols):
    """The window's values as (C, h*w, N); a view for a whole plane."""
    c, _, _, n = planes.shape
    return planes[:, rows[0] : rows[1], cols[0] : cols[1]].reshape(c, -1, n)


def _max_forward(x, out_hw, cells):
    """(output, argmax), both (C, H_out, W_out, N); argmax is the flat position within the window."""
    planes = to_planes(x)  # (C, H, W, N)
    c, n = planes.shape[0], planes.shape[3]
    out = np.empty((c, len(cells), n), dtype=x.dtype)  # (C, H_out*W_out, N)
    arg = np.empty((c, len(cells), n), dtype=np.int64)
    for k, (rows, cols) in enumerate(cells):
        block = _block(planes, rows, cols)  # (C, h*w, N)
        arg[:, k] = block.argmax(axis=1)  # the first maximum, as torch picks it
        nan = np.isnan(block)
        if nan.any():  # torch takes every NaN as a new maximum: the last one wins
            last = block.shape[1] - 1 - nan[:, ::-1].argmax(axis=1)
            arg[:, k] = np.where(nan.any(axis=1), last, arg[:, k])
        out[:, k] = np.take_along_axis(block, arg[:, k, None], axis=1)[:, 0]
    return out.reshape(c, *out_hw, n), arg.reshape(c, *out_hw, n)


def _max_backward(grad_output, arg, x_shape, cells):
    """grad_output (N, C, H_out, W_out) -> grad_input (N, C, H, W), a view of (C, H, W, N)."""
    gy = to_planes(np.asarray(grad_output))  # (C, H_out, W_out, N)
    c, n = x_shape[1], x_shape[0]
    gy, arg = gy.reshape(c, -1, n), arg.reshape(c, -1, n)  # (C, cells, N)
    grad = np.zeros((c, x_shape[2], x_shape[3], n), dtype=gy.dtype)  # (C, H, W, N)
    for k, (rows, cols) in enumerate(cells):
        area = (rows[1] - rows[0]) * (cols[1] - cols[0])
        hits = np.arange(area)[None, :, None] == arg[:, k, None]  # (C, h*w, N)
        share = gy[:, k, None] * hits  # as relu_backward: a product, not np.where
        grad[:, rows[0] : rows[1], cols[0] : cols[1]] += share.reshape(c, rows[1] - rows[0], -1, n)
    return from_planes(grad)


def _flat_indices(arg, x_shape, cells):
    """torch's int64 indices (N, C, H_out, W_out): the flat position h*W + w in the input plane."""
    c, ho, wo, n = arg.shape
    flat = np.empty(arg.shape, dtype=np.int64).reshape(c, -1, n)
    for k, (rows, cols) in enumerate(cells):
        width = cols[1] - cols[0]
        local = arg.reshape(c, -1, n)[:, k]
        flat[:, k] = (rows[0] + local // width) * x_shape[3] + cols[0] + local % width
    return np.ascontiguousarray(from_planes(flat.reshape(c, ho, wo, n)))


def _grad_output(grad_output, x, unbatched, out_hw):
    gy = float_array(grad_output, "grad_output", x.dtype)
    expected = (*x.shape[:2], *out_hw)
    if gy.shape != (expected[1:] if unbatched else expected):
        raise ValueError(f"grad_output must have shape {expected}. Received: grad_output.shape={gy.shape}")
    return gy.reshape(expected)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d``.

    input (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out); with ``return_indices`` also the
    int64 flat index h*W + w of each maximum in its input plane, as torch numbers them.
    """
    x, unbatched, out_hw, cells = _setup(input, output_size, "adaptive_max_pool2d")
    out, arg = _max_forward(x, out_hw, cells)
    out = from_planes(out)  # (N, C, H_out, W_out) view
    if return_indices:
        indices = _flat_indices(arg, x.shape, cells)
        return (out[0], indices[0]) if unbatched else (out, indices)
    return out[0] if unbatched else out


def adaptive_max_pool2d_backward(grad_output, input, output_size) -> np.ndarray:
    """Gradient of adaptive_max_pool2d: each cell's gradient goes to its window's maximum."""
    x, unbatched, out_hw, cells = _setup(input, output_size, "adaptive_max_pool2d")
    _, arg = _max_forward(x, out_hw, cells)
    grad = _max_backward(_grad_output(grad_output, x, unbatched, out_hw), arg, x.shape, cells)
    return grad[0] if unbatched else grad


def _avg_forward(x, out_hw, cells):
    planes = to_planes(x)  # (C, H, W, N)
    c, n = planes.shape[0], planes.shape[3]
    out = np.empty((c, len(cells), n), dtype=x.dtype)  # (C, H_out*W_out, N)
    for k, (rows, cols) in enumerate(cells):
        out[:, k] = _block(planes, rows, cols).mean(axis=1)
    return out.reshape(c, *out_hw, n)


def _avg_backward(grad_output, x_shape, cells):
    gy = to_planes(np.asarray(grad_output))  # (C, H_out, W_out, N)
    c, n = x_shape[1], x_shape[0]
    gy = gy.reshape(c, -1, n)  # (C, cells, N)
    grad = np.zeros((c, x_shape[2], x_shape[3], n), dtype=gy.dtype)  # (C, H, W, N)
    for k, (rows, cols) in enumerate(cells):
        area = (rows[1] - rows[0]) * (cols[1] - cols[0])
        grad[:, rows[0] : rows[1], cols[0] : cols[1]] += (gy[:, k] / gy.dtype.type(area))[:, None, None]
    return from_planes(grad)


def adaptive_avg_pool2d(input, output_size) -> np.ndarray:
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``:
    input (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out)."""
    x, unbatched, out_hw, cells = _setup(input, output_size, "adaptive_avg_pool2d")
    out = from_planes(_avg_forward(x, out_hw, cells))
    return out[0] if unbatched else out


def adaptive_avg_pool2d_backward(grad_output, input, output_size) -> np.ndarray:
    """Gradient of adaptive_avg_pool2d: each cell's gradient spread evenly over its window."""
    x, unbatched, out_hw, cells = _setup(input, output_size, "adaptive_avg_pool2d")
    grad = _avg_backward(_grad_output(grad_output, x, unbatched, out_hw), x.shape, cells)
    return grad[0] if unbatched else grad


class AdaptiveMaxPool2d(Module):
    """Adaptive max pooling to ``output_size`` (an int, or a pair of ints or None)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        x4, unbatched, out_hw, cells = _setup(x, self.output_size, "adaptive_max_pool2d")
        out, arg = _max_forward(x4, out_hw, cells)
        out = relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, out_hw, cells, out) if self.training else None
        if self.return_indices:
            indices = _flat_indices(arg, x4.shape, cells)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, out_hw, cells, out = self._saved()
        gy = np.asarray(grad_output).reshape(*x_shape[:2], *out_hw)  # (N, C, H_out, W_out)
        grad = _max_backward(relu_after_backward(self, gy, out), arg, x_shape, cells)
        return grad[0] if unbatched else grad

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling to ``output_size`` (an int, or a pair of ints or None)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        self._cache = x if self.training else None
        return adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output):
        return adaptive_avg_pool2d_backward(grad_output, self._saved(), self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

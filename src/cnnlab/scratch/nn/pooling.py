"""Pooling layers: max and average, fixed-window and adaptive, with torch's arguments."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import adaptive, pool
from cnnlab.scratch import functional as F
from cnnlab.scratch.module import Module
from cnnlab.scratch.nn.activation import relu_after, relu_after_backward
from cnnlab.scratch.windows import from_planes

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveMaxPool2d", "AdaptiveAvgPool2d"]


class MaxPool2d(Module):
    """Max pooling layer (torch's argument order: kernel_size, stride, padding, dilation,
    return_indices, ceil_mode)."""

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False
    ):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        x4, unbatched, geo = pool._setup(
            x, "max_pool2d", self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )
        out, arg = pool._max_forward(x4, geo)
        out = relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, geo, out) if self.training else None
        if self.return_indices:
            indices = pool._flat_indices(arg, x4.shape, geo)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, geo, out = self._saved()
        gy = np.asarray(grad_output).reshape(x_shape[:2] + geo["out_hw"])  # (N, C, H_out, W_out)
        grad = pool._max_backward(relu_after_backward(self, gy, out), arg, x_shape, geo)
        return grad[0] if unbatched else grad

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class AvgPool2d(Module):
    """Average pooling layer, torch's arguments."""

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        super().__init__()
        self.options = dict(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )

    def forward(self, x):
        self._cache = x if self.training else None
        return F.avg_pool2d(x, **self.options)

    def backward(self, grad_output):
        return F.avg_pool2d_backward(grad_output, self._saved(), **self.options)


class AdaptiveMaxPool2d(Module):
    """Adaptive max pooling to ``output_size`` (an int, or a pair of ints or None)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        x4, unbatched, out_hw, cells = adaptive._setup(x, self.output_size, "adaptive_max_pool2d")
        out, arg = adaptive._max_forward(x4, out_hw, cells)
        out = relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, out_hw, cells, out) if self.training else None
        if self.return_indices:
            indices = adaptive._flat_indices(arg, x4.shape, cells)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, out_hw, cells, out = self._saved()
        gy = np.asarray(grad_output).reshape(*x_shape[:2], *out_hw)  # (N, C, H_out, W_out)
        grad = adaptive._max_backward(relu_after_backward(self, gy, out), arg, x_shape, cells)
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
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output):
        return F.adaptive_avg_pool2d_backward(grad_output, self._saved(), self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

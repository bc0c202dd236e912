"""The convolution layer: a thin wrapper around ``cnnlab.scratch.conv`` that keeps the im2col matrix
for its backward."""

from __future__ import annotations

import numpy as np

from cnnlab import shapes
from cnnlab.scratch import conv
from cnnlab.scratch.module import Module, generator, uniform

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D convolution layer; weight (C_out, C_in/groups, kH, kW), bias (C_out,)."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        rng=None,
        dtype=np.float32,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels and out_channels must be divisible by groups. Received: "
                f"in_channels={in_channels}, out_channels={out_channels}, groups={groups}"
            )
        kh, kw = shapes.pair(kernel_size, "kernel_size")
        shapes.conv2d_padding(padding, (kh, kw), stride, dilation)  # fail early on bad options
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        rng, fan_in = generator(rng), in_channels // groups * kh * kw
        self.weight = uniform((out_channels, in_channels // groups, kh, kw), fan_in, rng, dtype)
        self.bias = uniform((out_channels,), fan_in, rng, dtype) if bias else None

    def forward(self, x):
        b = None if self.bias is None else self.bias.data
        x4, w, b, unbatched, geo = conv._setup(
            x, self.weight.data, b, self.stride, self.padding, self.dilation, self.groups
        )
        out, cols = conv._forward(x4, w, b, geo, self.workspace if self.training else None)
        self._cache = (cols, x4.shape, unbatched, geo) if self.training else None
        return out[0] if unbatched else out

    skips_input_grad = True

    def backward(self, grad_output, input_grad=True):
        """The input's gradient (None with ``input_grad=False``); adds into weight.grad and bias.grad.
        One backward per forward: it reuses the forward's im2col memory."""
        cols, x_shape, unbatched, geo = self._saved()
        self._cache = None
        gy = np.asarray(grad_output).reshape((x_shape[0], self.weight.shape[0]) + geo["out_hw"])
        grad_input, grad_w, grad_b = conv._backward(
            gy, cols, x_shape, self.weight.data, self.bias is not None, geo, input_grad
        )
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        if grad_input is None:
            return None
        return grad_input[0] if unbatched else grad_input

    def extra_repr(self):
        c_in, c_out = self.weight.shape[1] * self.groups, self.weight.shape[0]
        return f"{c_in}, {c_out}, kernel_size={self.weight.shape[2:]}"

"""2-D max and average pooling, forward and backward side by side.

Both loop over the kh*kw kernel offsets; each step is one whole-array operation on the
(C, H_out, W_out, N) view that offset reads (see ``windows.py`` for why batch is innermost).
Outputs and input gradients are NCHW views of that layout.

    max:  y[n, c, i, j] = max_{p,q} xp[n, c, i*s + p*d, j*s + q*d]     (xp padded with -inf)
          dL/dx gets dL/dy at the argmax of each window (the first maximum, as torch picks it)
    avg:  y[n, c, i, j] = (1/D[i, j]) sum_{p,q} xp[n, c, i*s + p, j*s + q]   (xp padded with 0)
          dL/dx gets dL/dy / D at every position of each window

The divisor D is ``divisor_override`` if given, else the window's area clipped to the padded
input (``count_include_pad=True``) or to the input itself (``count_include_pad=False``).

The layers ``MaxPool2d`` and ``AvgPool2d`` take torch's arguments; ``MaxPool2d`` keeps its forward's
argmax for the backward, and may apply a fused ReLU to its output (``cnnlab.scratch.nn.fuse_relu``).
"""

from __future__ import annotations

import numpy as np

from cnnlab import shapes
from cnnlab.scratch.activation import relu_after, relu_after_backward
from cnnlab.scratch.checks import batched, float_array
from cnnlab.scratch.module import Module
from cnnlab.scratch.windows import from_planes, offset_view, pad2d, to_planes, unpad2d

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "MaxPool2d", "AvgPool2d"]


def _setup(input, op, kernel_size, stride, padding, dilation, ceil_mode):
    """Check the arguments; return (x, unbatched, geometry) with the padding ceil mode needs."""
    x, unbatched = batched(float_array(input, "input"), op)
    out_hw = shapes.pool2d_output_shape(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    kernel = shapes.pair(kernel_size, "kernel_size")
    stride = kernel if shapes.default_stride(stride) else shapes.pair(stride, "stride")
    dilation, (ph, pw) = shapes.pair(dilation, "dilation"), shapes.pair(padding, "padding")
    # Ceil mode's last window may run past the right padding: pad enough to cover it.
    need = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out_hw, stride, dilation, kernel)]
    pads = (ph, max(0, need[0] - x.shape[2] - ph), pw, max(0, need[1] - x.shape[3] - pw))
    geo = dict(kernel=kernel, stride=stride, dilation=dilation, out_hw=out_hw, pads=pads)
    return x, unbatched, geo


def _offsets(geo):
    return [(i, j) for i in range(geo["kernel"][0]) for j in range(geo["kernel"][1])]


def _max_forward(x, geo, nan_aware=False):
    """(output, argmax), both (C, H_out, W_out, N); argmax is the winning offset i*kw + j.

    A NaN reaches the output through np.maximum, so a NaN-free output means a NaN-free input: only
    then is the pass repeated with torch's NaN rule (which costs a pass over the whole input).
    """
    xp = pad2d(to_planes(x), geo["pads"], -np.inf)  # (C, Hp, Wp, N)
    view = lambda i, j: offset_view(xp, i, j, geo["out_hw"], geo["stride"], geo["dilation"])
    out = view(0, 0).copy()
    offsets = _offsets(geo)
    int_type = np.int8 if len(offsets) < 128 else np.int32
    arg, better_index = np.zeros(out.shape, dtype=int_type), np.empty(out.shape, dtype=int_type)
    for index, (i, j) in enumerate(offsets[1:], start=1):
        v = view(i, j)
        better = v > out
        if nan_aware:  # torch takes a NaN as the new maximum (np.maximum keeps it too)
            better |= np.isnan(v)
        np.maximum(out, v, out=out)
        # index exceeds every earlier index, so max(arg, better * index) updates exactly the
        # improved windows; branch-free, unlike a masked copy (which is several times slower).
        np.multiply(better, int_type(index), out=better_index)
        np.maximum(arg, better_index, out=arg)
    if not nan_aware and len(offsets) > 1 and np.isnan(out).any():
        return _max_forward(x, geo, nan_aware=True)
    return out, arg


def _max_backward(grad_output, arg, x_shape, geo):
    """grad_output (N, C, H_out, W_out) and arg (C, H_out, W_out, N) -> (N, C, H, W) view."""
    gy = to_planes(np.asarray(grad_output))  # (C, H_out, W_out, N)
    # Windows that cannot overlap (stride at least the dilated kernel) write disjoint places; when
    # they also tile the input exactly, every place is written once and nothing needs zeroing first.
    disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(geo["stride"], geo["dilation"], geo["kernel"]))
    tiled = disjoint and geo["stride"] == geo["kernel"] and geo["dilation"] == (1, 1) and not any(geo["pads"])
    tiled = tiled and all(o * k == size for o, k, size in zip(geo["out_hw"], geo["kernel"], x_shape[2:]))
    make = np.empty if tiled else np.zeros
    grad_xp = make((x_shape[1], *_padded_hw(x_shape, geo), x_shape[0]), dtype=gy.dtype)
    for index, (i, j) in enumerate(_offsets(geo)):
        view = offset_view(grad_xp, i, j, geo["out_hw"], geo["stride"], geo["dilation"])
        share = gy * (arg == index)  # as relu_backward: a product, not np.where (see its NOTE)
        if disjoint:
            view[...] = share
        else:
            view += share
    return from_planes(unpad2d(grad_xp, geo["pads"], x_shape[2:]))


def _padded_hw(x_shape, geo):
    top, bottom, left, right = geo["pads"]
    return (x_shape[2] + top + bottom, x_shape[3] + left + right)


def _flat_indices(arg, x_shape, geo):
    """torch's indices (N, C, H_out, W_out): the flat position h*W + w of each maximum in its
    unpadded input plane."""
    (_, kw), (sh, sw), (dh, dw) = geo["kernel"], geo["stride"], geo["dilation"]
    arg = from_planes(arg).astype(np.int64)  # (N, C, H_out, W_out)
    rows = np.arange(geo["out_hw"][0])[:, None] * sh - geo["pads"][0] + (arg // kw) * dh
    cols = np.arange(geo["out_hw"][1])[None, :] * sw - geo["pads"][2] + (arg % kw) * dw
    return np.ascontiguousarray(rows * x_shape[3] + cols)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), H_out from
    ``cnnlab.shapes.pool2d_output_shape``. With ``return_indices`` also returns, like torch,
    the int64 flat index h*W + w of each maximum within its input plane. NOTE: a dilated
    window that reads only padding gives -inf, and its index is meaningless (in torch too).
    """
    x, unbatched, geo = _setup(input, "max_pool2d", kernel_size, stride, padding, dilation, ceil_mode)
    out, arg = _max_forward(x, geo)
    out = from_planes(out)  # (N, C, H_out, W_out) view
    if return_indices:
        indices = _flat_indices(arg, x.shape, geo)
        return (out[0], indices[0]) if unbatched else (out, indices)
    return out[0] if unbatched else out


def max_pool2d_backward(
    grad_output, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
) -> np.ndarray:
    """Gradient of max_pool2d with respect to its input: each window's gradient goes to its
    (first) maximum; overlapping windows add up."""
    x, unbatched, geo = _setup(input, "max_pool2d", kernel_size, stride, padding, dilation, ceil_mode)
    _, arg = _max_forward(x, geo)
    grad = _max_backward(_grad_output(grad_output, x, unbatched, geo), arg, x.shape, geo)
    return grad[0] if unbatched else grad


def _grad_output(grad_output, x, unbatched, geo):
    gy = float_array(grad_output, "grad_output", x.dtype)
    expected = x.shape[:2] + tuple(geo["out_hw"])
    if gy.shape != (expected[1:] if unbatched else expected):
        raise ValueError(
            f"grad_output must have the pooling output shape {expected}. "
            f"Received: grad_output.shape={gy.shape}"
        )
    return gy.reshape(expected)


def _avg_setup(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, unbatched, geo = _setup(input, "avg_pool2d", kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, (int, np.integer))
            or divisor_override == 0
        ):
            raise ValueError(
                f"divisor_override must be a non-zero integer or None. "
                f"Received: divisor_override={divisor_override!r}"
            )
        geo["divisor"] = np.array(divisor_override, dtype=x.dtype)
        return x, unbatched, geo
    sizes = []  # per axis: how many of each window's positions count
    for axis in (0, 1):
        size, k, s, p = x.shape[2 + axis], geo["kernel"][axis], geo["stride"][axis], geo["pads"][2 * axis]
        start = np.arange(geo["out_hw"][axis]) * s - p
        end = np.minimum(start + k, size + p)  # clipped to the padded input
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        sizes.append(end - start)
    geo["divisor"] = (sizes[0][:, None, None] * sizes[1][None, :, None]).astype(x.dtype)  # (H_out, W_out, 1)
    return x, unbatched, geo


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (see the module docstring)."""
    x, unbatched, geo = _avg_setup(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    xp = pad2d(to_planes(x), geo["pads"])  # (C, Hp, Wp, N)
    total = np.zeros((x.shape[1], *geo["out_hw"], x.shape[0]), dtype=x.dtype)  # (C, H_out, W_out, N)
    for i, j in _offsets(geo):
        total += offset_view(xp, i, j, geo["out_hw"], geo["stride"], geo["dilation"])
    out = from_planes(total / geo["divisor"])  # (N, C, H_out, W_out) view
    return out[0] if unbatched else out


def avg_pool2d_backward(
    grad_output,
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
) -> np.ndarray:
    """Gradient of avg_pool2d with respect to its input: dL/dy / D spread over each window."""
    x, unbatched, geo = _avg_setup(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    gy = to_planes(_grad_output(grad_output, x, unbatched, geo))  # (C, H_out, W_out, N)
    share = gy / geo["divisor"]
    grad_xp = np.zeros((x.shape[1], *_padded_hw(x.shape, geo), x.shape[0]), dtype=x.dtype)
    for i, j in _offsets(geo):
        offset_view(grad_xp, i, j, geo["out_hw"], geo["stride"], geo["dilation"])[...] += share
    grad = from_planes(unpad2d(grad_xp, geo["pads"], x.shape[2:]))  # (N, C, H, W) view
    return grad[0] if unbatched else grad


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
        x4, unbatched, geo = _setup(
            x, "max_pool2d", self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )
        out, arg = _max_forward(x4, geo)
        out = relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, geo, out) if self.training else None
        if self.return_indices:
            indices = _flat_indices(arg, x4.shape, geo)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, geo, out = self._saved()
        gy = np.asarray(grad_output).reshape(x_shape[:2] + geo["out_hw"])  # (N, C, H_out, W_out)
        grad = _max_backward(relu_after_backward(self, gy, out), arg, x_shape, geo)
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
        return avg_pool2d(x, **self.options)

    def backward(self, grad_output):
        return avg_pool2d_backward(grad_output, self._saved(), **self.options)

"""2-D convolution (torch's cross-correlation), forward and backward side by side.

For input x (N, C, H, W), weight w (O, C/G, kh, kw), bias b (O,), G groups, stride s,
dilation d and padding, with xp the padded input and g the group of output channel o:

    y[n, o, i, j] = b[o] + sum_{c in g, p, q} w[o, c, p, q] * xp[n, c, i*s + p*d, j*s + q*d]

Written as im2col: ``cols`` (C*kh*kw, H_out*W_out*N) holds every window (batch innermost, see
windows.py), one GEMM per group gives ``y = w @ cols``, and the backward pass is two more
GEMMs plus col2im:

    dL/db = sum_{n,i,j} dL/dy        dL/dw = dL/dy @ cols^T        dL/dcols = w^T @ dL/dy
    dL/dx = fold(dL/dcols)  (each window's gradient added back where it was read)

3x3 convolutions with stride 1, one group and at least winograd.MIN_CHANNELS input channels take
Winograd's F(2x2, 3x3) instead (winograd.py): the same result with 2.25x fewer multiplications.

The layer ``Conv2d`` runs the same forward and keeps its im2col matrix (or Winograd's padded input)
for its backward, instead of recomputing it as ``conv2d_backward`` must.

References: Dumoulin & Visin, "A guide to convolution arithmetic" (2016); torch.nn.functional.conv2d.
"""

from __future__ import annotations

import numpy as np

from cnnlab import shapes
from cnnlab.scratch import winograd
from cnnlab.scratch.checks import batched, float_array, positive_int
from cnnlab.scratch.module import Module, generator, uniform
from cnnlab.scratch.windows import fold, from_planes, pad2d, to_planes, unpad2d, windows

__all__ = ["conv2d", "conv2d_backward", "conv2d_reference", "Conv2d"]


def _setup(input, weight, bias, stride, padding, dilation, groups):
    """Check the arguments; return (x, w, b, unbatched, geometry)."""
    x, unbatched = batched(float_array(input, "input"), "conv2d")
    w = float_array(weight, "weight", x.dtype)
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (C_out, C_in/groups, kH, kW). Received: weight.shape={w.shape}")
    groups = positive_int(groups, "groups")
    c_out, c_group, kh, kw = w.shape
    if c_out % groups:
        raise ValueError(
            f"out_channels must be divisible by groups. Received: weight.shape={w.shape}, groups={groups}"
        )
    if x.shape[1] != c_group * groups:
        raise ValueError(
            f"input channels must equal weight.shape[1] * groups = {c_group * groups}. "
            f"Received: input.shape={np.shape(input)}, groups={groups}"
        )
    b = None if bias is None else float_array(bias, "bias", x.dtype)
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},). Received: bias.shape={b.shape}")
    out_hw = shapes.conv2d_output_shape(x.shape[2:], (kh, kw), stride, padding, dilation)
    pads = shapes.conv2d_padding(padding, (kh, kw), stride, dilation)
    stride, dilation = shapes.pair(stride, "stride"), shapes.pair(dilation, "dilation")
    geometry = dict(pads=pads, out_hw=out_hw, stride=stride, dilation=dilation, groups=groups)
    return x, w, b, unbatched, geometry


def _im2col(x: np.ndarray, kernel_size, geo, workspace=None) -> np.ndarray:
    """Contiguous (G, C/G*kh*kw, H_out*W_out*N) windows of x, in weight's (C, kh, kw) order.

    ``workspace(name, shape, dtype)``, when given, supplies the padded copy and the matrix itself
    from the arrays of the previous step: a fresh array this large costs as much in page faults as
    the copy that fills it.
    """
    planes = to_planes(x)  # (C, H, W, N)
    padded_shape = (planes.shape[0], *padded_hw(planes.shape[1:3], geo["pads"]), planes.shape[3])
    out = workspace("padded", padded_shape, x.dtype) if workspace and any(geo["pads"]) else None
    xp = pad2d(planes, geo["pads"], out=out)  # (C, Hp, Wp, N)
    view = windows(xp, kernel_size, geo["out_hw"], geo["stride"], geo["dilation"])
    cols = workspace("cols", view.shape, x.dtype) if workspace else np.empty(view.shape, x.dtype)
    np.copyto(cols, view)  # (C, kh, kw, H_out, W_out, N)
    return cols.reshape(geo["groups"], -1, cols[0, 0, 0].size)


def padded_hw(hw, pads) -> tuple[int, int]:
    top, bottom, left, right = pads
    return (hw[0] + top + bottom, hw[1] + left + right)


def _forward(x, w, b, geo, workspace=None):
    """(output, cols): the convolution and what its backward reuses: the im2col matrix, or for
    the 3x3 convolutions that winograd.py computes, its ``Saved`` padded input."""
    if winograd.applies(w.shape, geo):
        y, saved = winograd.forward(x, w, geo["pads"], workspace)  # (O, H_out, W_out, N)
        if b is not None:
            y += b[:, None, None, None]
        return from_planes(y), saved
    g, (c_out, c_group, kh, kw) = geo["groups"], w.shape
    cols = _im2col(x, (kh, kw), geo, workspace)  # (G, K, M), M = H_out*W_out*N
    w_mat = w.reshape(g, c_out // g, c_group * kh * kw)  # (G, O/G, K)
    out = np.empty((g, c_out // g, cols.shape[2]), dtype=x.dtype)  # (G, O/G, M)
    for group in range(g):
        np.matmul(w_mat[group], cols[group], out=out[group])  # one GEMM for the whole batch
    out = out.reshape(c_out, *geo["out_hw"], x.shape[0])  # (O, H_out, W_out, N)
    if b is not None:
        out += b[:, None, None, None]
    return from_planes(out), cols  # (N, O, H_out, W_out) view


def _backward(grad_output, cols, x_shape, w, has_bias, geo, input_grad=True):
    """(grad_input or None, grad_weight, grad_bias) from the forward's im2col matrix (G, K, M).

    NOTE: ``cols`` is overwritten (dL/dcols takes its place once dL/dw is done), so a forward's
    im2col matrix serves one backward, as torch frees a graph after its backward.
    """
    g, (c_out, c_group, kh, kw) = geo["groups"], w.shape
    gy = to_planes(np.asarray(grad_output, dtype=w.dtype)).reshape(g, c_out // g, -1)  # (G, O/G, M)
    grad_bias = gy.reshape(c_out, -1).sum(axis=1) if has_bias else None
    if isinstance(cols, winograd.Saved):
        grad_input, grad_w = winograd.backward(grad_output, cols, w, input_grad)
        return grad_input, grad_w, grad_bias
    w_mat = w.reshape(g, c_out // g, c_group * kh * kw)  # (G, O/G, K)
    grad_w_t = np.empty((g, w_mat.shape[2], w_mat.shape[1]), dtype=w.dtype)  # (G, K, O/G)
    for group in range(g):
        # dL/dw = dL/dy cols^T, computed as (cols dL/dy^T)^T: OpenBLAS runs this order of the same
        # GEMM (long reduction over M = H_out*W_out*N) much faster.
        np.matmul(cols[group], gy[group].T, out=grad_w_t[group])
    grad_w = np.ascontiguousarray(grad_w_t.transpose(0, 2, 1)).reshape(w.shape)  # (O, C/G, kh, kw)
    if not input_grad:
        return None, grad_w, grad_bias
    grad_cols = cols  # cols is no longer needed: dL/dcols goes into its memory
    for group in range(g):
        np.matmul(w_mat[group].T, gy[group], out=grad_cols[group])  # dL/dcols = w^T dL/dy
    grad_cols = grad_cols.reshape(x_shape[1], kh, kw, *geo["out_hw"], x_shape[0])  # (C, kh, kw, Ho, Wo, N)
    grad_xp = fold(grad_cols, padded_hw(x_shape[2:], geo["pads"]), geo["stride"], geo["dilation"])
    grad_input = from_planes(unpad2d(grad_xp, geo["pads"], x_shape[2:]))  # (N, C, H, W) view
    return grad_input, grad_w, grad_bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """2-D convolution, as ``torch.nn.functional.conv2d``.

    Shapes: input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_out, C_in/groups, kH, kW);
    bias (C_out,) or None; output (N, C_out, H_out, W_out), with H_out from
    ``cnnlab.shapes.conv2d_output_shape``. ``padding`` is an int, a pair, 'valid' or 'same'.
    The output keeps the input's float dtype. NOTE: the output is an NCHW view of
    (C, H, W, N) memory, not C-contiguous (see windows.py). NOTE: unlike torch, weight and bias are cast to
    the input's dtype instead of refused when they differ.
    """
    x, w, b, unbatched, geo = _setup(input, weight, bias, stride, padding, dilation, groups)
    out, _ = _forward(x, w, b, geo)
    return out[0] if unbatched else out


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of conv2d: ``(grad_input, grad_weight, grad_bias or None)``.

    ``grad_output`` has conv2d's output shape; the rest are conv2d's own arguments.
    See the module docstring for the equations.
    """
    x, w, b, unbatched, geo = _setup(input, weight, bias, stride, padding, dilation, groups)
    gy = float_array(grad_output, "grad_output", x.dtype)
    expected = (x.shape[0], w.shape[0], *geo["out_hw"])
    if gy.shape != (expected[1:] if unbatched else expected):
        raise ValueError(
            f"grad_output must have conv2d's output shape {expected}. Received: grad_output.shape={gy.shape}"
        )
    cols = (
        winograd.save_input(x, geo["pads"])
        if winograd.applies(w.shape, geo)
        else _im2col(x, w.shape[2:], geo)
    )
    grad_input, grad_weight, grad_bias = _backward(gy.reshape(expected), cols, x.shape, w, b is not None, geo)
    return (grad_input[0] if unbatched else grad_input), grad_weight, grad_bias


def conv2d_reference(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The notebook's ``forward_convolution``: four nested loops, one output value at a time.

    The readable definition of conv2d (same arguments, same result), and an oracle on tiny
    inputs: it computes one value at a time in Python, far slower than ``conv2d``.
    """
    x, w, b, unbatched, geo = _setup(input, weight, bias, stride, padding, dilation, groups)
    top, bottom, left, right = geo["pads"]
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # (N, C, Hp, Wp)
    (sh, sw), (dh, dw), (ho, wo) = geo["stride"], geo["dilation"], geo["out_hw"]
    c_out, c_group, kh, kw = w.shape
    out = np.zeros((x.shape[0], c_out, ho, wo), dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(c_out):
            first = (o // (c_out // geo["groups"])) * c_group  # first input channel of o's group
            for i in range(ho):
                for j in range(wo):
                    patch = xp[
                        n,
                        first : first + c_group,
                        i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                        j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                    ]
                    out[n, o, i, j] = np.sum(patch * w[o]) + (0.0 if b is None else b[o])
    return out[0] if unbatched else out


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
        x4, w, b, unbatched, geo = _setup(
            x, self.weight.data, b, self.stride, self.padding, self.dilation, self.groups
        )
        out, cols = _forward(x4, w, b, geo, self.workspace if self.training else None)
        self._cache = (cols, x4.shape, unbatched, geo) if self.training else None
        return out[0] if unbatched else out

    skips_input_grad = True

    def backward(self, grad_output, input_grad=True):
        """The input's gradient (None with ``input_grad=False``); adds into weight.grad and bias.grad.
        One backward per forward: it reuses the forward's im2col memory."""
        cols, x_shape, unbatched, geo = self._saved()
        self._cache = None
        gy = np.asarray(grad_output).reshape((x_shape[0], self.weight.shape[0]) + geo["out_hw"])
        grad_input, grad_w, grad_b = _backward(
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

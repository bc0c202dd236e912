"""Layers for the scratch engine, named and constructed as in ``torch.nn``.

Each layer is a thin wrapper around a functional op: ``forward(x)`` (also ``__call__``) runs
it and, in training mode, keeps what the backward needs (the convolution's im2col matrix, the
max-pool's argmax, batch norm's normalised input, dropout's mask); ``backward(grad_output)``
adds the parameter gradients into ``.grad`` and returns the input gradient. ``state_dict()``
keys, shapes and order equal torch's (buffers included), so weights move both ways. Default
initialisation follows torch: weights kaiming-uniform with a = sqrt(5), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases the same bound, drawn from ``rng``; batch norm
starts at weight 1, bias 0, running mean 0, running variance 1.
"""

from __future__ import annotations

import numpy as np

from cnnlab import shapes
from cnnlab.scratch import adaptive, conv, norm, pool
from cnnlab.scratch import functional as F
from cnnlab.scratch.module import Module, Parameter, Sequential, generator, uniform
from cnnlab.scratch.windows import from_planes

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool2d",
    "Linear",
    "ReLU",
    "Flatten",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "ResidualBlock",
    "fuse_relu",
]


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
        out = _relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, geo, out) if self.training else None
        if self.return_indices:
            indices = pool._flat_indices(arg, x4.shape, geo)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, geo, out = self._saved()
        gy = np.asarray(grad_output).reshape(x_shape[:2] + geo["out_hw"])  # (N, C, H_out, W_out)
        grad = pool._max_backward(_relu_after_backward(self, gy, out), arg, x_shape, geo)
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


class Linear(Module):
    """``y = x W^T + b``; weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        rng = generator(rng)
        self.weight = uniform((out_features, in_features), in_features, rng, dtype)
        self.bias = uniform((out_features,), in_features, rng, dtype) if bias else None

    def forward(self, x):
        self._cache = x if self.training else None
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output):
        grad_input, grad_w, grad_b = F.linear_backward(
            grad_output, self._saved(), self.weight.data, None if self.bias is None else self.bias.data
        )
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_input

    def extra_repr(self):
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class ReLU(Module):
    """``max(x, 0)``. NOTE: ``inplace`` is accepted for torch's signature; the output is always new.

    ``absorbed`` (set by ``fuse_relu``): the layer before or after applies it, and this one passes
    values and gradients through unchanged.
    """

    absorbed = False

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        if self.absorbed:
            self._cache = True
            return x
        out = F.relu(x)
        self._cache = out if self.training else None  # out > 0 exactly where x > 0
        return out

    def backward(self, grad_output):
        saved = self._saved()
        return grad_output if self.absorbed else F.relu_backward(grad_output, saved)


def _relu_after(layer, out: np.ndarray) -> np.ndarray:
    """``out`` with a fused ReLU applied in place when ``layer.relu_after`` (see ``fuse_relu``)."""
    return np.maximum(out, 0, out=out) if getattr(layer, "relu_after", False) else out


def _relu_after_backward(layer, grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    return grad * (out > 0) if getattr(layer, "relu_after", False) else grad


def fuse_relu(model: Module, enable: bool = True) -> Module:
    """Let the layer next to each ReLU apply it, saving whole passes over the largest arrays; the
    results are identical, and every module (so every state_dict key and summary row) stays.

    - ReLU then MaxPool2d without padding (or AdaptiveMaxPool2d): ReLU and max commute,
      max(relu(a), relu(b)) = relu(max(a, b)), so the pool applies it to its output, 1/4 as large.
    - BatchNorm then ReLU: the batch norm applies it in place to the output it has just made.

    ``enable=False`` undoes it. Returns ``model``.
    """
    for m in model.modules():
        for name in ("absorbed", "relu_after"):
            m.__dict__.pop(name, None)
    if not enable:
        return model
    for seq in (m for m in model.modules() if isinstance(m, Sequential)):
        layers = list(seq)
        for i, layer in enumerate(layers):
            if not isinstance(layer, ReLU):
                continue
            after = layers[i + 1] if i + 1 < len(layers) else None
            before = layers[i - 1] if i > 0 else None
            if isinstance(after, AdaptiveMaxPool2d) or (
                isinstance(after, MaxPool2d) and shapes.pair(after.padding, "padding") == (0, 0)
            ):
                after.relu_after = layer.absorbed = True
            elif isinstance(before, _BatchNorm):
                before.relu_after = layer.absorbed = True
    return model


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one, as torch.nn.Flatten."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        x = np.asarray(x)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        self._cache = x.shape if self.training else None
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])  # e.g. (N, C*H*W)

    def backward(self, grad_output):
        return np.asarray(grad_output).reshape(self._saved())


class AdaptiveMaxPool2d(Module):
    """Adaptive max pooling to ``output_size`` (an int, or a pair of ints or None)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        x4, unbatched, out_hw, cells = adaptive._setup(x, self.output_size, "adaptive_max_pool2d")
        out, arg = adaptive._max_forward(x4, out_hw, cells)
        out = _relu_after(self, from_planes(out))  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, out_hw, cells, out) if self.training else None
        if self.return_indices:
            indices = adaptive._flat_indices(arg, x4.shape, cells)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, out_hw, cells, out = self._saved()
        gy = np.asarray(grad_output).reshape(*x_shape[:2], *out_hw)  # (N, C, H_out, W_out)
        grad = adaptive._max_backward(_relu_after_backward(self, gy, out), arg, x_shape, cells)
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


class _BatchNorm(Module):
    """Batch norm over axis 1, torch's constructor arguments, parameters and buffers.

    With ``momentum=None`` the running statistics are a cumulative average (the factor is
    1 / num_batches_tracked), as in torch. Without ``track_running_stats`` there are no buffers
    and batch statistics normalise in eval mode too.
    """

    dims: tuple[int, ...] = ()

    def __init__(
        self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, dtype=np.float32
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        tracked = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None)

    def _factor(self) -> float:
        """The momentum of this step; counts the batch in training mode, as torch does."""
        if not (self.training and self.track_running_stats):
            return 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked += 1  # a 0-d int64 array, updated in place
        return 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim not in self.dims:
            raise ValueError(
                f"{type(self).__name__} expects {' or '.join(f'{d}-D' for d in self.dims)} input. "
                f"Received: input.shape={x.shape}"
            )
        momentum = self._factor()
        batch_stats = self.training or self.running_mean is None  # untracked: batch statistics always
        stats = (self.running_mean, self.running_var)  # updated in place in training mode
        w, b = (None, None) if not self.affine else (self.weight.data, self.bias.data)
        x, w, b = norm._setup(x, *stats, w, b, batch_stats, momentum, self.eps)
        space = self.workspace("xhat", (x.shape[1], x.size // x.shape[1]), x.dtype) if self.training else None
        y, xhat, invstd = norm._normalise(x, *stats, w, b, batch_stats, momentum, self.eps, space)
        y = _relu_after(self, y if y is not xhat else y.copy())  # (C, M)
        self._cache = (xhat, invstd, x.shape, batch_stats, y) if self.training else None
        return norm.from_channels(y, x.shape)

    def backward(self, grad_output):
        """The input's gradient; one backward per forward (it is computed in the forward's memory)."""
        xhat, invstd, x_shape, batch_stats, y = self._saved()
        self._cache = None
        grad = norm.to_channels(np.asarray(grad_output).reshape(x_shape))  # (C, M)
        gc = _relu_after_backward(self, grad, y)
        w = None if not self.affine else self.weight.data
        own = gc is not grad  # a fresh array from the fused ReLU's mask, else the caller's
        grad_input, grad_w, grad_b = norm._backward(gc, xhat, invstd, w, self.affine, batch_stats, own)
        if self.affine:
            self.weight.accumulate(grad_w)
            self.bias.accumulate(grad_b)
        return norm.from_channels(grad_input, x_shape)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, per channel C."""

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, per channel C."""

    dims = (4,)


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


class ResidualBlock(Module):
    """``relu(body(x) + shortcut(x))``: the skip path of a residual network (He et al. 2016).

    ``shortcut`` None is the identity (an empty Sequential, so it adds no state_dict keys, like
    torch's ``nn.Sequential()``); ``relu=False`` leaves the sum as it is. Backward sends the
    gradient of the sum down both paths and adds what they return:
    dL/dx = body.backward(g) + shortcut.backward(g), with g the gradient after the ReLU.
    Keys: "body.*", "shortcut.*", as the torch block of the same layout.
    """

    def __init__(self, body: Module, shortcut: Module | None = None, relu: bool = True):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else Sequential()
        self.relu = ReLU() if relu else Sequential()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))

    def backward(self, grad_output):
        g = self.relu.backward(grad_output)
        return self.body.backward(g) + self.shortcut.backward(g)

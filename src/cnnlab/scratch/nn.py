"""Layers for the scratch engine, named and constructed as in ``torch.nn``.

Each layer is a thin wrapper around a functional op: ``forward(x)`` (also ``__call__``) runs
it and, in training mode, keeps what the backward needs (the convolution's im2col matrix, the
max-pool's argmax); ``backward(grad_output)`` adds the parameter gradients into ``.grad`` and
returns the input gradient. ``state_dict()`` keys and shapes equal torch's, so weights move
both ways. Default initialisation follows torch: weights kaiming-uniform with a = sqrt(5),
which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases the same bound; drawn from ``rng``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cnnlab import shapes
from cnnlab.scratch import conv, pool
from cnnlab.scratch import functional as F
from cnnlab.scratch.windows import from_planes

__all__ = [
    "Parameter",
    "Module",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Linear",
    "ReLU",
    "Flatten",
    "Sequential",
]


class Parameter:
    """A trainable array: ``data`` and its gradient ``grad`` (None until a backward pass)."""

    def __init__(self, data):
        self.data = np.asarray(data)
        self.grad = None

    @property
    def shape(self):
        return self.data.shape

    def accumulate(self, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grad``, as autograd accumulates over backward passes."""
        self.grad = grad.astype(self.data.dtype, copy=True) if self.grad is None else self.grad + grad

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def _generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _uniform(shape, fan_in, rng, dtype) -> Parameter:
    """torch's default init: kaiming_uniform(a=sqrt(5)) and the bias rule share this bound."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


class Module:
    """Base class: registers Parameters and sub-Modules in assignment order, as torch does."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix: str = ""):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Drop the gradients (torch's default ``set_to_none=True``)."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of the parameters under torch's keys, e.g. ``"0.weight"`` in a Sequential."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays (or anything ``np.asarray`` takes, torch tensors included) into the
        parameters, keeping each parameter's dtype. Missing or unexpected keys and shape
        mismatches raise ValueError."""
        own = dict(self.named_parameters())
        missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"state_dict keys do not match. Missing: {missing}, unexpected: {unexpected}")
        for name, value in state_dict.items():
            if name in own:
                array = np.asarray(value)
                if array.shape != own[name].shape:
                    raise ValueError(
                        f"state_dict[{name!r}] has shape {array.shape}, expected {own[name].shape}"
                    )
                own[name].data = array.astype(own[name].data.dtype, copy=True)

    def train(self, mode: bool = True) -> Module:
        object.__setattr__(self, "training", bool(mode))
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype) -> Module:
        """Cast every parameter to ``dtype`` (e.g. np.float64, as torch's ``.double()``)."""
        for p in self.parameters():
            p.data, p.grad = p.data.astype(dtype), None
        return self

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def _saved(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward pass in training mode first")
        return self._cache

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        inner = "".join(f"\n  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items())
        return f"{type(self).__name__}({self.extra_repr()}{inner}{chr(10) if inner else ''})"


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
        rng, fan_in = _generator(rng), in_channels // groups * kh * kw
        self.weight = _uniform((out_channels, in_channels // groups, kh, kw), fan_in, rng, dtype)
        self.bias = _uniform((out_channels,), fan_in, rng, dtype) if bias else None

    def forward(self, x):
        b = None if self.bias is None else self.bias.data
        x4, w, b, unbatched, geo = conv._setup(
            x, self.weight.data, b, self.stride, self.padding, self.dilation, self.groups
        )
        out, cols = conv._forward(x4, w, b, geo)
        self._cache = (cols, x4.shape, unbatched, geo) if self.training else None
        return out[0] if unbatched else out

    def backward(self, grad_output):
        cols, x_shape, unbatched, geo = self._saved()
        gy = np.asarray(grad_output).reshape((x_shape[0], self.weight.shape[0]) + geo["out_hw"])
        grad_input, grad_w, grad_b = conv._backward(
            gy, cols, x_shape, self.weight.data, self.bias is not None, geo
        )
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
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
        out = from_planes(out)  # (N, C, H_out, W_out) view
        self._cache = (arg, x4.shape, unbatched, geo) if self.training else None
        if self.return_indices:
            indices = pool._flat_indices(arg, x4.shape, geo)
            return (out[0], indices[0]) if unbatched else (out, indices)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        arg, x_shape, unbatched, geo = self._saved()
        gy = np.asarray(grad_output).reshape(x_shape[:2] + geo["out_hw"])  # (N, C, H_out, W_out)
        grad = pool._max_backward(gy, arg, x_shape, geo)
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
        rng = _generator(rng)
        self.weight = _uniform((out_features, in_features), in_features, rng, dtype)
        self.bias = _uniform((out_features,), in_features, rng, dtype) if bias else None

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
    def forward(self, x):
        out = F.relu(x)
        self._cache = out if self.training else None  # out > 0 exactly where x > 0
        return out

    def backward(self, grad_output):
        return F.relu_backward(grad_output, self._saved())


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


class Sequential(Module):
    """Modules applied in order, registered as "0", "1", ... so keys read "3.weight" as in torch."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def backward(self, grad_output):
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output

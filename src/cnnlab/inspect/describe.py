"""A network as a list of layer descriptions, whatever the backend, without running it.

``describe(model)`` walks a torch ``nn.Module`` or a ``cnnlab.scratch.nn.Module`` and returns
``Layer`` records (kind, the options that decide its output shape, parameter counts) in the
order data flows through them. Both backends give the same records, so the summary built from
them is the same table.

Containers: a ``Sequential`` is walked child by child. Any other module with children must
describe itself, because its ``forward`` may do anything (a residual block adds its input back).
It does so with a method

    def summary_layers(self, prefix):   # -> list of Layer | Residual
        return [Residual(prefix + "add", main=describe(self.body, prefix + "body."),
                         shortcut=describe(self.shortcut, prefix + "shortcut.")),
                *describe(self.relu, prefix + "relu")]

``Residual`` means ``out = main(x) + shortcut(x)``; an empty shortcut is the identity.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Layer", "Residual", "describe", "DescribeError", "ELEMENTWISE"]

# Layers that keep the shape and do no multiply-adds worth counting.
ELEMENTWISE = frozenset(
    {
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Sigmoid",
        "Tanh",
        "Hardswish",
        "Hardsigmoid",
        "Hardtanh",
        "Softplus",
        "Softmax",
        "LogSoftmax",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "AlphaDropout",
        "Identity",
    }
)


class DescribeError(ValueError):
    """A module the summary cannot read; the message says which and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` is torch's class name, ``options`` what decides its output shape."""

    name: str  # the module's path, as in state_dict keys ("0", "block1.conv")
    kind: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: int = 0
    trainable: int = 0


@dataclasses.dataclass(frozen=True)
class Residual:
    """``out = main(x) + shortcut(x)``; an empty ``shortcut`` is the identity."""

    name: str
    main: tuple = ()
    shortcut: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "main", tuple(self.main))
        object.__setattr__(self, "shortcut", tuple(self.shortcut))


def _children(module) -> list[tuple[str, Any]]:
    if hasattr(module, "named_children"):  # torch
        return list(module.named_children())
    return list(getattr(module, "_modules", {}).items())  # cnnlab.scratch.nn


def _own_parameters(module) -> tuple[int, int]:
    """(parameters, trainable parameters) of a leaf module, either backend."""
    params = module.parameters() if callable(getattr(module, "parameters", None)) else []
    total = trainable = 0
    for p in params:
        n = math.prod(p.shape)
        total += n
        trainable += n if getattr(p, "requires_grad", True) else 0
    return total, trainable


def _opt(module, name: str, default=None):
    """An option by torch's attribute name; scratch layers may keep theirs in ``options``."""
    if hasattr(module, name):
        return getattr(module, name)
    return getattr(module, "options", {}).get(name, default)


def _weight_shape(module) -> tuple[int, ...]:
    return tuple(module.weight.shape)


def _conv(m):
    out_channels, c_group, kh, kw = _weight_shape(m)
    groups = _opt(m, "groups", 1)
    return dict(
        in_channels=c_group * groups,
        out_channels=out_channels,
        kernel_size=(kh, kw),
        stride=_opt(m, "stride", 1),
        padding=_opt(m, "padding", 0),
        dilation=_opt(m, "dilation", 1),
        groups=groups,
    )


def _pool(m):
    return dict(
        kernel_size=_opt(m, "kernel_size"),
        stride=_opt(m, "stride"),
        padding=_opt(m, "padding", 0),
        dilation=_opt(m, "dilation", 1),
        ceil_mode=bool(_opt(m, "ceil_mode", False)),
    )


def _linear(m):
    out_features, in_features = _weight_shape(m)
    return dict(in_features=in_features, out_features=out_features)


def _batchnorm(m):
    features = _opt(m, "num_features")
    return dict(num_features=features if features is not None else _weight_shape(m)[0])


OPTIONS = {
    "Conv2d": _conv,
    "MaxPool2d": _pool,
    "AvgPool2d": lambda m: {**_pool(m), "dilation": 1},
    "AdaptiveAvgPool2d": lambda m: dict(output_size=_opt(m, "output_size")),
    "AdaptiveMaxPool2d": lambda m: dict(output_size=_opt(m, "output_size")),
    "Linear": _linear,
    "Flatten": lambda m: dict(start_dim=_opt(m, "start_dim", 1), end_dim=_opt(m, "end_dim", -1)),
    "BatchNorm2d": _batchnorm,
    "BatchNorm1d": _batchnorm,
    **{kind: (lambda m: {"p": _opt(m, "p")} if _opt(m, "p") is not None else {}) for kind in ELEMENTWISE},
}


def describe(module, prefix: str = "") -> list:
    """The layers of ``module`` in data-flow order, as Layer and Residual records.

    ``prefix`` is the module's own path followed by a dot (empty for the whole model).
    """
    if callable(getattr(module, "summary_layers", None)):
        return list(module.summary_layers(prefix))
    kind = type(module).__name__
    children = _children(module)
    if kind == "ResidualBlock" and {name for name, _ in children} == {"body", "shortcut", "relu"}:
        # relu(body(x) + shortcut(x)): the block of cnnlab.models and of cnnlab.scratch.nn alike.
        return [
            Residual(
                prefix + "add",
                main=describe(module.body, prefix + "body."),
                shortcut=describe(module.shortcut, prefix + "shortcut."),
            ),
            *describe(module.relu, prefix + "relu"),
        ]
    if kind == "Sequential":
        return [item for name, child in children for item in describe(child, prefix + name + ".")]
    name = prefix[:-1] if prefix.endswith(".") else prefix
    if children:
        raise DescribeError(
            f"module {name or '(the model)'} ({kind}) has sub-modules but no "
            f"summary_layers(prefix) method saying how data flows through them"
        )
    if kind not in OPTIONS:
        raise DescribeError(
            f"module {name or '(the model)'} has type {kind}, which the summary does not "
            f"know; supported: {', '.join(sorted(OPTIONS))}"
        )
    params, trainable = _own_parameters(module)
    return [Layer(name, kind, OPTIONS[kind](module), params, trainable)]

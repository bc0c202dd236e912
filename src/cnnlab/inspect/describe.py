"""A network as a list of layer descriptions, whatever the backend, without running it.

``describe(model)`` walks a torch ``nn.Module`` or a ``cnnlab.scratch.nn.Module`` and returns
``Layer`` records (kind, the options that decide its output shape, parameter counts) in the
order data flows through them. The kinds it knows, and how each one's options are read, are the
table in ``cnnlab.inspect.kinds``. Both backends give the same records, so the summary built from
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

from cnnlab.inspect.kinds import KINDS

__all__ = ["Layer", "Residual", "describe", "DescribeError", "own_parameters"]


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


def own_parameters(module) -> tuple[int, int]:
    """(parameters, trainable parameters) of a leaf module, either backend."""
    params = module.parameters() if callable(getattr(module, "parameters", None)) else []
    total = trainable = 0
    for p in params:
        n = math.prod(p.shape)
        total += n
        trainable += n if getattr(p, "requires_grad", True) else 0
    return total, trainable


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
                main=tuple(describe(module.body, prefix + "body.")),
                shortcut=tuple(describe(module.shortcut, prefix + "shortcut.")),
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
    read = KINDS[kind].read if kind in KINDS else None
    if read is None:
        supported = sorted(k for k, known in KINDS.items() if known.read is not None)
        raise DescribeError(
            f"module {name or '(the model)'} has type {kind}, which the summary does not "
            f"know; supported: {', '.join(supported)}"
        )
    params, trainable = own_parameters(module)
    return [Layer(name, kind, read(module), params, trainable)]

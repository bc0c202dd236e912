"""The base of the scratch layers: Parameter, Module and Sequential, as ``torch.nn`` has them.

A Module registers its Parameters, buffers (arrays saved with the weights but not trained, such as
batch norm's running statistics) and sub-Modules in assignment order, so ``state_dict()`` lists the
same keys in the same order as the torch model: each module's own parameters, then its own buffers,
then its children's, e.g. ``"1.weight", "1.bias", "1.running_mean", "1.running_var",
"1.num_batches_tracked"`` for a BatchNorm2d at index 1 of a Sequential.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["Parameter", "Module", "Sequential"]

# workspace(name, shape, dtype): an uninitialised array kept under ``name`` for reuse (see
# ``Module.workspace``); the ops that take one use it for their scratch arrays.
Workspace = Callable[[str, tuple[int, ...], DTypeLike], np.ndarray]


class Parameter:
    """A trainable array: ``data`` and its gradient ``grad`` (None until a backward pass)."""

    def __init__(self, data):
        self.data = np.asarray(data)
        self.grad = None

    @property
    def shape(self):
        """The shape of ``data``."""
        return self.data.shape

    def accumulate(self, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grad``, as autograd accumulates over backward passes."""
        self.grad = grad.astype(self.data.dtype, copy=True) if self.grad is None else self.grad + grad

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def generator(rng) -> np.random.Generator:
    """``rng`` if it is a NumPy Generator, else a new one seeded with it (None: fresh OS entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def uniform(shape, fan_in, rng, dtype) -> Parameter:
    """torch's default init: kaiming_uniform(a=sqrt(5)) and the bias rule share this bound,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


def reused_array(spaces: dict, name: str, shape, dtype) -> np.ndarray:
    """``spaces[name]`` if it has this shape and dtype, else a new uninitialised array kept there:
    the scratch arrays of ``Module.workspace`` and of functions that keep their own."""
    array = spaces.get(name)
    if array is None or array.shape != tuple(shape) or array.dtype != dtype:
        array = spaces[name] = np.empty(shape, dtype)
    return array


class Module:
    """Base class: registers Parameters, buffers and sub-Modules in assignment order, as torch does."""

    # Set in __init__ with object.__setattr__, past this class's own __setattr__.
    _parameters: OrderedDict[str, Parameter]
    _buffers: OrderedDict[str, np.ndarray | None]
    _modules: OrderedDict[str, Module]
    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:  # assigning a new array to a buffer replaces it, as in torch
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` as ``self.<name>`` and in ``state_dict()``; None registers nothing saved."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with their dotted paths."""
        yield prefix.rstrip("."), self
        for name, m in self._modules.items():
            yield from m.named_modules(prefix + name + ".")

    def modules(self) -> list[Module]:
        """This module and every sub-module, depth first, as ``named_modules`` walks them."""
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix: str = ""):
        """``(key, Parameter)`` pairs under torch's keys (``"0.weight"``), depth first."""
        for path, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                yield (path + "." if path else "") + name, p

    def parameters(self) -> list[Parameter]:
        """Every Parameter of this module and its sub-modules, in torch's order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        """``(key, array)`` pairs of the buffers (``running_mean``, ...), None ones left out."""
        for path, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (path + "." if path else "") + name, b

    def buffers(self) -> list[np.ndarray]:
        """Every buffer array of this module and its sub-modules, in torch's order."""
        return [b for _, b in self.named_buffers()]

    def zero_grad(self) -> None:
        """Drop the gradients (torch's default ``set_to_none=True``)."""
        for p in self.parameters():
            p.grad = None

    def _state_items(self):
        """(key, owning module, attribute name, array) in torch's state_dict order."""
        for path, m in self.named_modules():
            key = path + "." if path else ""
            for name, p in m._parameters.items():
                yield key + name, m, name, p.data
            for name, b in m._buffers.items():
                if b is not None:
                    yield key + name, m, name, b

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of the parameters and buffers under torch's keys, e.g. ``"0.weight"`` in a Sequential."""
        return OrderedDict((key, np.array(value, copy=True)) for key, _, _, value in self._state_items())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays (or anything ``np.asarray`` takes, torch tensors included) into the parameters
        and buffers, keeping each one's dtype. Missing or unexpected keys and shape mismatches raise
        ValueError."""
        own = {key: (m, name, value) for key, m, name, value in self._state_items()}
        missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"state_dict keys do not match. Missing: {missing}, unexpected: {unexpected}")
        for key, value in state_dict.items():
            if key not in own:
                continue
            module, name, current = own[key]
            array = np.asarray(value)
            if array.shape != current.shape:
                raise ValueError(f"state_dict[{key!r}] has shape {array.shape}, expected {current.shape}")
            if name in module._parameters:
                module._parameters[name].data = array.astype(current.dtype, copy=True)
            else:
                setattr(module, name, array.astype(current.dtype, copy=True))

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=False``: evaluation) here and in every sub-module; returns self."""
        object.__setattr__(self, "training", bool(mode))
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (batch norm's running statistics, no dropout), as ``train(False)``."""
        return self.train(False)

    def to(self, dtype) -> Module:
        """Cast every parameter and floating buffer to ``dtype`` (e.g. np.float64, as torch's
        ``.double()``); integer buffers such as ``num_batches_tracked`` keep theirs."""
        for p in self.parameters():
            p.data, p.grad = p.data.astype(dtype), None
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    setattr(m, name, b.astype(dtype))
        return self

    def __call__(self, x):
        return self.forward(x)

    skips_input_grad = False  # whether backward takes input_grad=False (see SkipsInputGrad)

    def forward(self, x):
        """The layer's output for input ``x``; in training mode it keeps what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, grad_output):
        """Given dL/d(output), store the parameters' gradients (``Parameter.grad``, accumulated)
        and return dL/d(input). Needs a forward pass in training mode first."""
        raise NotImplementedError

    def workspace(self, name: str, shape, dtype) -> np.ndarray:
        """An uninitialised array for ``name`` kept from one training step to the next (re-made when
        the shape changes): a fresh array of tens of MB costs as much in page faults as the pass
        that fills it. For scratch arrays only, never for what a layer returns."""
        return reused_array(self.__dict__.setdefault("_workspace", {}), name, shape, dtype)

    def __getstate__(self):
        """What copies keep (copy.deepcopy, pickle): not the workspaces nor the backward's cache."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_workspace", "_cache")}

    def _saved(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward pass in training mode first")
        return self._cache

    def extra_repr(self) -> str:
        """The arguments ``repr`` shows inside the parentheses, as torch's ``extra_repr``."""
        return ""

    def __repr__(self):
        inner = "".join(f"\n  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items())
        return f"{type(self).__name__}({self.extra_repr()}{inner}{chr(10) if inner else ''})"


class SkipsInputGrad(Protocol):
    """A module with ``skips_input_grad = True``: its backward takes ``input_grad=False`` and then
    returns None instead of the input's gradient (Conv2d, Sequential)."""

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None: ...


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

    skips_input_grad = True

    def backward(self, grad_output, input_grad: bool = True):
        """The gradient through every module in reverse. With ``input_grad=False`` the first module
        may skip its input's gradient (a convolution then returns None), as torch does for an input
        that does not require grad: the training step's input is data."""
        modules = list(self)
        for index in range(len(modules) - 1, -1, -1):
            module = modules[index]
            if index == 0 and not input_grad and module.skips_input_grad:
                return module.backward(grad_output, input_grad=False)
            grad_output = module.backward(grad_output)
        return grad_output

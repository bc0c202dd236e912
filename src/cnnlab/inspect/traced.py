"""The layer table of a network with its own ``forward()``, read from one forward pass.

``summarize`` follows the layers' options with shape arithmetic, which needs to know how data flows
(a ``Sequential``, or a module's ``summary_layers``). A module of your own says so only in its
``forward`` code, so here forward hooks record each leaf layer in the order it runs, with the
output shape it really gives; parameters and multiply-adds come from the same rules as the
summary's. Receptive fields are not computed: the code between layers may do anything.
"""

from __future__ import annotations

from cnnlab.inspect.describe import DescribeError, Layer, describe, own_parameters
from cnnlab.inspect.hooks import recording
from cnnlab.inspect.kinds import KINDS, read_options
from cnnlab.inspect.summary import Row, Summary, summarize

__all__ = ["summarize_model", "summarize_traced", "layers_in_order"]


def summarize_model(model, input_shape, batch_size: int = 1, name: str = "") -> Summary:
    """``summarize`` when the network's structure can be read, else (a torch module with its own
    forward) the table of one forward pass."""
    try:
        describe(model)
    except DescribeError:
        if not hasattr(model, "register_forward_hook"):
            raise
        return summarize_traced(model, input_shape, batch_size, name)
    return summarize(model, input_shape, batch_size, name)


def layers_in_order(model, input_shape) -> list[Layer]:
    """Every leaf layer as a ``Layer`` record, in the order data flows through them: from
    ``describe`` when the structure can be read (residual blocks' paths in turn), else from one
    forward pass of a module with its own ``forward``."""
    try:
        return list(_flat(describe(model)))
    except DescribeError:
        if not hasattr(model, "register_forward_hook"):
            raise
    return [_as_layer(name, module) for name, module, _ in _trace(model, input_shape)]


def _flat(items):
    for item in items:
        if hasattr(item, "main"):  # a Residual
            yield from _flat(item.main)
            yield from _flat(item.shortcut)
        else:
            yield item


def _as_layer(name: str, module) -> Layer:
    params, trainable = own_parameters(module)
    return Layer(name, type(module).__name__, read_options(module), params, trainable)


def _trace(model, input_shape, batch_size: int = 2) -> list[tuple[str, object, tuple[int, ...]]]:
    """(name, module, output shape) of each leaf module, in the order a forward pass calls them."""
    import torch

    calls: list[tuple[str, object, tuple[int, ...]]] = []
    seen: set[str] = set()

    def record(name, module, inputs, output):
        if name not in seen and isinstance(output, torch.Tensor):
            seen.add(name)
            calls.append((name, module, tuple(output.shape[1:])))

    leaves = [n for n, m in model.named_modules() if n and not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with recording(model, leaves, record), torch.no_grad():
            model(torch.zeros(max(2, batch_size), *input_shape))
    finally:
        model.train(was_training)
    return calls


def _row(name: str, module, shape: tuple[int, ...]) -> Row:
    """The table's row for a layer one forward pass called, with the output ``shape`` it gave."""
    layer = _as_layer(name, module)
    kind = KINDS.get(layer.kind)
    if kind is None or kind.read is None:  # a kind the table does not know: its shape and parameters
        return Row(name, layer.kind, "", shape, layer.params, layer.trainable, 0, None)
    mult_adds = kind.mult_adds(layer.options, shape)
    return Row(
        name, layer.kind, kind.detail(layer.options), shape, layer.params, layer.trainable, mult_adds, None
    )


def summarize_traced(model, input_shape, batch_size: int = 1, name: str = "") -> Summary:
    """The table of one forward pass: shapes, parameters and multiply-adds; no receptive fields."""
    calls = _trace(model, input_shape, batch_size)
    rows = [Row("input", "", "", tuple(input_shape), field=(1, 1))]
    rows += [_row(layer_name, module, shape) for layer_name, module, shape in calls]
    used = {name for name, _, _ in calls}
    unused = sum(
        own_parameters(m)[0]
        for n, m in model.named_modules()
        if n and n not in used and not list(m.children())
    )
    summary = Summary(name or type(model).__name__, tuple(input_shape), batch_size, rows, traced=True)
    if unused:
        summary.reason = f"{unused:,} parameters belong to layers the forward pass did not use"
    return summary

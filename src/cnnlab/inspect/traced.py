"""The layer table of a network with its own ``forward()``, read from one forward pass.

``summarize`` follows the layers' options with shape arithmetic, which needs to know how data flows
(a ``Sequential``, or a module's ``summary_layers``). A module of your own says so only in its
``forward`` code, so here forward hooks record each leaf layer in the order it runs, with the
output shape it really gives; parameters and multiply-adds come from the same rules as the
summary's. Receptive fields are not computed: the code between layers may do anything.
"""

from __future__ import annotations

import math

from cnnlab.inspect.describe import OPTIONS, DescribeError, Layer, describe
from cnnlab.inspect.summary import Row, Summary, layer_detail, summarize

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
    from cnnlab.inspect.describe import _own_parameters

    kind = type(module).__name__
    params, trainable = _own_parameters(module)
    return Layer(name, kind, OPTIONS[kind](module) if kind in OPTIONS else {}, params, trainable)


def _trace(model, input_shape, batch_size: int = 2) -> list[tuple[str, object, tuple[int, ...]]]:
    """(name, module, output shape) of each leaf module, in the order a forward pass calls them."""
    import torch

    calls: list[tuple[str, object, tuple[int, ...]]] = []
    seen: set[str] = set()

    def record(layer_name):
        def hook(module, inputs, output):
            if layer_name not in seen and isinstance(output, torch.Tensor):
                seen.add(layer_name)
                calls.append((layer_name, module, tuple(output.shape[1:])))

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    hooks = [m.register_forward_hook(record(n)) for n, m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(max(2, batch_size), *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return calls


def _mult_adds(layer: Layer, module, out_shape: tuple[int, ...]) -> int:
    """Per image, as the summary counts them: one per weight used per output value."""
    if layer.kind == "Conv2d":
        kh, kw = layer.options["kernel_size"]
        return math.prod(out_shape) * layer.options["in_channels"] // layer.options["groups"] * kh * kw
    if layer.kind == "Linear":
        return math.prod(out_shape[:-1]) * layer.options["in_features"] * layer.options["out_features"]
    if layer.kind.startswith("BatchNorm"):
        return math.prod(out_shape)
    return 0


def summarize_traced(model, input_shape, batch_size: int = 1, name: str = "") -> Summary:
    from cnnlab.inspect.describe import _own_parameters

    rows = [Row("input", "", "", tuple(input_shape), field=(1, 1))]
    calls = _trace(model, input_shape, batch_size)
    for layer_name, module, shape in calls:
        layer = _as_layer(layer_name, module)
        detail = layer_detail(layer) if layer.kind in OPTIONS else ""
        mult_adds = _mult_adds(layer, module, shape)
        rows.append(
            Row(layer_name, layer.kind, detail, shape, layer.params, layer.trainable, mult_adds, None)
        )
    used = {name for name, _, _ in calls}
    unused = sum(
        _own_parameters(m)[0]
        for n, m in model.named_modules()
        if n and n not in used and not list(m.children())
    )
    summary = Summary(name or type(model).__name__, tuple(input_shape), batch_size, rows, traced=True)
    if unused:
        summary.reason = f"{unused:,} parameters belong to layers the forward pass did not use"
    return summary

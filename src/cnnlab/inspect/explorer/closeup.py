"""A convolution or a pooling map up close, for one image: the numbers behind one output value.

A convolution's output value is written as ``cnnlab convolve --explain`` writes it,
``y[o, i, j] = (x)(w) + ... + (b) bias = value``; over several input channels, as one partial
sum per channel (each of which expands to its kH x kW products). The products are taken in
float64 from the float32 input and weights; ``value`` is the map's own float32 value, and
``sum`` the float64 total, which agrees with it to float32 rounding.

Receptive fields walk back from an output cell through each step's window arithmetic to the
28x28 input: ``rows r0..r1`` of a layer with kernel k, stride s, padding p and dilation d see
rows ``r0 s - p .. r1 s - p + d (k - 1)`` of its input; a residual sum sees the union of its
two paths; a linear layer sees everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnlab import shapes
from cnnlab.inspect.convolve import Example
from cnnlab.inspect.convolve import format_number as num
from cnnlab.inspect.explorer.network import INPUT, Forward, Network, Step, quantize, step_of
from cnnlab.inspect.kinds import KINDS, Box

__all__ = ["conv_detail", "conv_cells", "pool_detail", "receptive_field"]


def _window(step: Step, box: Box, in_hw: tuple[int, int]) -> Box | None:
    """The input cells that output cells ``box`` of ``step`` see; None means all of them."""
    kind = KINDS.get(step.kind)
    return box if kind is None else kind.window(step.options, box, in_hw, step.shape[1:])


def receptive_field(network: Network, index: int, cell: tuple[int, int]) -> Box:
    """The input-image pixels output ``cell`` of step ``index`` depends on, clipped to the image."""
    h, w = network.input_shape[1:]

    def back(i: int, box: Box | None) -> Box | None:
        if box is None or i == INPUT:
            return box
        step = network.steps[i]
        source_shape = (
            network.input_shape if step.sources[0] == INPUT else network.steps[step.sources[0]].shape
        )
        seen = _window(step, box, (source_shape[1], source_shape[2]) if len(source_shape) == 3 else (0, 0))
        boxes = [b for b in (back(s, seen) for s in step.sources) if b is not None]
        if len(boxes) < len(step.sources):  # a source that sees the whole input
            return None
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    found = back(index, (*cell, *cell))
    if found is None:
        return (0, 0, h - 1, w - 1)
    return (max(found[0], 0), max(found[1], 0), min(found[2], h - 1), min(found[3], w - 1))


def _check_index(value: int, size: int, name: str) -> None:
    if not 0 <= value < size:
        raise ValueError(f"{name} must be in 0..{size - 1}. Received: {name}={value}")


def _example(network: Network, forward: Forward, step: Step, channel: int) -> tuple[Example, np.ndarray]:
    """(map ``channel`` of convolution ``step`` as a one-output-channel Example, in float64 from
    the float32 values; the map's float32 output (H_out, W_out))."""
    conv = network.module(step)
    weight = conv.weight.detach().float().numpy()  # (C_out, C_in / groups, kH, kW)
    _check_index(channel, weight.shape[0], "channel")
    per_group = weight.shape[1]
    first = channel // (weight.shape[0] // conv.groups) * per_group  # the group's first input channel
    bias = float(conv.bias[channel].detach()) if conv.bias is not None else 0.0
    x = forward.inputs[step.index][first : first + per_group]  # (C_in / groups, H, W)
    example = Example(
        x.astype(np.float64),
        weight[channel : channel + 1].astype(np.float64),  # (1, C, kH, kW)
        np.array([bias]),
        tuple(conv.stride),
        conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
        tuple(conv.dilation),
    )
    return example, forward.outputs[step.index][channel]


def conv_detail(network: Network, forward: Forward, index: int, channel: int, cell=None) -> dict:
    """Output map ``channel`` of convolution step ``index``: its inputs, kernel, bias and, for
    ``cell`` (i, j), the sum of products that gives its value."""
    step = step_of(network, index, "conv", "a convolution")
    example, output = _example(network, forward, step, channel)
    conv = network.module(step)
    per_group = example.x.shape[0]
    first = channel // (conv.out_channels // conv.groups) * per_group
    x = example.x.astype(np.float32)
    detail = {
        "layer": index,
        "channel": channel,
        "kind": step.kind,
        "in_channels": list(range(first, first + per_group)),
        "input_shape": list(x.shape),
        "inputs": quantize(x),  # the input channels, as the page's heatmaps travel
        "kernel": example.weight[0].astype(np.float32).tolist(),  # (C, kH, kW)
        "bias": float(example.bias[0]),
        "stride": list(example.stride),
        "pads": list(example.pads),  # (top, bottom, left, right)
        "dilation": list(example.dilation),
        "output": output.tolist(),
        "cell": None,
    }
    if cell is not None:
        detail["cell"] = _explain_cell(network, example, output, index, channel, cell)
    return detail


def _sum_of(example: Example, index: int, channel: int, i: int, j: int) -> tuple[list[dict], float, str]:
    """(per input channel: its products, partial sum and text; the float64 total; the terms
    joined) of output cell (i, j)."""
    xp, w = example.padded, example.weight[0]  # (C, H + pads, W + pads), (C, kH, kW)
    top, left = example.pads[0], example.pads[2]
    height, width = example.x.shape[1:]
    taps = example.taps(i, j)
    padded = [not (0 <= r - top < height and 0 <= s - left < width) for _, _, r, s in taps]
    channels: list[dict[str, Any]] = []  # JSON for the page
    for c in range(xp.shape[0]):
        pairs = [(float(xp[c, r, s]), float(w[c, p, q])) for p, q, r, s in taps]
        partial = math.fsum(a * b for a, b in pairs)
        products = " + ".join(f"({num(a)})({num(b)})" for a, b in pairs)
        channels.append(
            {"products": pairs, "partial": partial, "text": f"{products} = {num(partial)}", "padded": padded}
        )
    bias = float(example.bias[0])
    total = math.fsum([c["partial"] for c in channels] + [bias])
    if len(channels) == 1:  # one input channel: the products themselves, as convolve --explain
        terms = [channels[0]["text"].rsplit(" = ", 1)[0]]
    else:
        terms = [f"({num(c['partial'])})" for c in channels]
    if bias:
        terms.append(f"({num(bias)}) bias")
    return channels, total, " + ".join(terms)


def _window_of(example: Example, i: int, j: int) -> list[int]:
    """Output cell (i, j)'s window (top, left, bottom, right) in the unpadded input; may stick out."""
    taps = example.taps(i, j)
    (_, _, r0, c0), (_, _, r1, c1) = taps[0], taps[-1]
    return [r0 - example.pads[0], c0 - example.pads[2], r1 - example.pads[0], c1 - example.pads[2]]


def _explain_cell(network: Network, example: Example, output: np.ndarray, index: int, channel: int, cell):
    i, j = cell
    _check_index(i, output.shape[0], "row")
    _check_index(j, output.shape[1], "col")
    channels, total, terms = _sum_of(example, index, channel, i, j)
    value = float(output[i, j])
    return {
        "row": i,
        "col": j,
        "value": value,
        "sum": total,
        "text": f"y[{channel}, {i}, {j}] = {terms} = {num(value)}",
        "channels": channels,
        "window": _window_of(example, i, j),
        # None for a traced network: what its forward() does between layers is unknown here
        "field": None if network.traced else list(receptive_field(network, index, (i, j))),
    }


def conv_cells(network: Network, forward: Forward, index: int, channel: int) -> list[dict]:
    """Every output cell of map ``channel`` of convolution ``index``, row by row, as the animation
    writes it: its sum (``text``, as ``conv_detail`` writes a cell), its value and its window."""
    step = step_of(network, index, "conv", "a convolution")
    example, output = _example(network, forward, step, channel)
    cells = []
    for i in range(output.shape[0]):
        for j in range(output.shape[1]):
            _, total, terms = _sum_of(example, index, channel, i, j)
            value = float(output[i, j])
            text = f"y[{channel}, {i}, {j}] = {terms} = {num(value)}"
            cells.append({"text": text, "value": value, "sum": total, "window": _window_of(example, i, j)})
    return cells


def pool_detail(network: Network, forward: Forward, index: int, channel: int) -> dict:
    """Map ``channel`` of pooling step ``index``: every output cell's window, the winner of each
    (max pooling) and each value written out (``max(a, b, c, d) = m`` or ``(a + b + c + d) / 4 = m``)."""
    import torch
    import torch.nn.functional as F

    step = step_of(network, index, "pool", "a pool")
    x = forward.inputs[index]  # (C, H, W)
    _check_index(channel, x.shape[0], "channel")
    plane, output = x[channel], forward.outputs[index][channel]  # (H, W), (H_out, W_out)
    winners = None
    pool = network.module(step)
    if step.kind in ("MaxPool2d", "AdaptiveMaxPool2d"):
        t = torch.from_numpy(np.ascontiguousarray(plane))[None, None]  # (1, 1, H, W)
        if step.kind == "MaxPool2d":
            options = {
                k: getattr(pool, k) for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
            }
            _, idx = F.max_pool2d(t, return_indices=True, **options)
        else:
            _, idx = F.adaptive_max_pool2d(t, pool.output_size, return_indices=True)
        winners = [[int(k) // plane.shape[1], int(k) % plane.shape[1]] for k in idx.reshape(-1)]
    windows, texts = [], []
    for i in range(output.shape[0]):
        for j in range(output.shape[1]):
            box = receptive_field_of_pool(step, plane.shape, i, j)
            windows.append(list(box))
            texts.append(_pool_text(step, pool, plane, box, float(output[i, j])))
    return {
        "layer": index,
        "channel": channel,
        "kind": step.kind,
        "input": plane.tolist(),
        "output": output.tolist(),
        "windows": windows,  # per output cell, row by row: (top, left, bottom, right) in the input
        "winners": winners,  # max pooling: (row, col) of each window's maximum; else null
        "texts": texts,
    }


def receptive_field_of_pool(step: Step, hw: tuple[int, int], i: int, j: int) -> Box:
    """Output cell (i, j)'s window on the pool's input, clipped to it (padding is not drawn)."""
    window = _window(step, (i, j, i, j), hw)
    assert window is not None  # a pool's window is always a box (kinds._pool_window, _adaptive_window)
    top, left, bottom, right = window
    return (max(top, 0), max(left, 0), min(bottom, hw[0] - 1), min(right, hw[1] - 1))


def _pool_text(step: Step, pool, plane: np.ndarray, box: Box, value: float) -> str:
    top, left, bottom, right = box
    d = shapes.pair(getattr(pool, "dilation", 1), "dilation")
    cells = plane[top : bottom + 1 : d[0], left : right + 1 : d[1]].reshape(-1)
    listed = ", ".join(num(v) for v in cells)
    if "Max" in step.kind:
        return f"max({listed}) = {num(value)}"
    divisor = len(cells)
    if step.kind == "AvgPool2d":  # torch counts padded zeros unless told not to; an override wins
        k = shapes.pair(pool.kernel_size, "kernel_size")
        if pool.divisor_override:
            divisor = pool.divisor_override
        elif pool.count_include_pad and any(shapes.pair(pool.padding, "padding")):
            divisor = k[0] * k[1]
    return f"({' + '.join(num(v) for v in cells)}) / {divisor} = {num(value)}"

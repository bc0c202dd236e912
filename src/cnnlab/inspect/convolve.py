"""One small convolution, computed three ways and explained value by value.

The notebook's example: input [[-2,-2,-2],[4,2,-4],[-3,2,4]] and the 2x2 identity filter
[[1,0],[0,1]] give [[0,-6],[6,6]]; the top-left value is (-2)(1) + (-2)(0) + (4)(0) + (2)(1) = 0.

``Example`` holds an input (C, H, W), a weight (C_out, C, kH, kW), a bias (C_out,) and
torch's stride, padding and dilation. ``run`` computes it with ``conv2d_reference`` (the
notebook's loops), the scratch engine's ``conv2d`` (im2col) and ``torch.nn.functional.conv2d``,
all in float64.
"""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np

from cnnlab import shapes
from cnnlab.errors import option

__all__ = [
    "NOTEBOOK_INPUT",
    "NOTEBOOK_KERNEL",
    "COLOR_INPUT",
    "COLOR_KERNEL",
    "CHANNEL_NAMES",
    "explain_channels",
    "Example",
    "Result",
    "parse_array",
    "make_example",
    "run",
    "explain",
    "Explanation",
    "format_grid",
    "format_number",
]

NOTEBOOK_INPUT = [[-2, -2, -2], [4, 2, -4], [-3, 2, 4]]
NOTEBOOK_KERNEL = [[1, 0], [0, 1]]
# "A color image has three channels, red green and blue" (the notebook): a red square on a blue
# background, 5x5, and one 3x3 filter per channel that adds up red and takes away blue, so the
# output is large where the window holds red and small where it holds blue.
COLOR_INPUT = [
    [[0, 0, 0, 0, 0], [0, 9, 9, 9, 0], [0, 9, 9, 9, 0], [0, 9, 9, 9, 0], [0, 0, 0, 0, 0]],  # red
    [[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 2, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]],  # green
    [[6, 6, 6, 6, 6], [6, 0, 0, 0, 6], [6, 0, 0, 0, 6], [6, 0, 0, 0, 6], [6, 6, 6, 6, 6]],  # blue
]
COLOR_KERNEL = [
    [[1, 1, 1], [1, 1, 1], [1, 1, 1]],  # red: counts
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]],  # green: ignored
    [[-1, -1, -1], [-1, -1, -1], [-1, -1, -1]],  # blue: counts against
]
CHANNEL_NAMES = ("red", "green", "blue")  # what three input channels are
TOLERANCE = 1e-9  # float64 sums of a few dozen products agree far closer than this
# What a teaching demo can show on a terminal, and so all it accepts: a size past these is a typo
# (--padding 20000 once asked for 24 GB), not a lesson.
LIMITS = {
    "input side": 64,
    "channels": 16,
    "kernel side": 15,
    "padding": 32,
    "stride": 64,
    "dilation": 16,
    "output side": 64,
}


@dataclasses.dataclass(frozen=True)
class Example:
    x: np.ndarray  # (C, H, W)
    weight: np.ndarray  # (C_out, C, kH, kW)
    bias: np.ndarray  # (C_out,)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zeros around the input."""
        return shapes.conv2d_padding(self.padding, self.weight.shape[2:], self.stride, self.dilation)

    @property
    def padded(self) -> np.ndarray:
        top, bottom, left, right = self.pads
        return np.pad(self.x, ((0, 0), (top, bottom), (left, right)))  # (C, H + pads, W + pads)

    @property
    def out_hw(self) -> tuple[int, int]:
        return shapes.conv2d_output_shape(
            self.x.shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation
        )

    def taps(self, i: int, j: int) -> list[tuple[int, int, int, int]]:
        """(p, q, row, col) for each kernel tap of output (i, j), in padded-input coordinates."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        kh, kw = self.weight.shape[2:]
        return [(p, q, i * sh + p * dh, j * sw + q * dw) for p in range(kh) for q in range(kw)]


@dataclasses.dataclass(frozen=True)
class Result:
    reference: np.ndarray  # (C_out, H_out, W_out) from conv2d_reference
    scratch: np.ndarray  # from cnnlab.scratch's conv2d
    torch: np.ndarray  # from torch.nn.functional.conv2d
    example: Example | None = None  # what was convolved

    def explain(self) -> Explanation:
        """Each output value as its sum of products (``cnnlab convolve --explain``)."""
        if self.example is None:
            raise ValueError("this result does not hold its example")
        return explain(self.example, self.reference)

    def __str__(self) -> str:
        planes = "\n".join(format_grid(plane) for plane in self.reference)
        return f"output {tuple(self.reference.shape)}:\n{planes}"

    def __repr__(self) -> str:
        verdict = "agree" if self.agree else "DISAGREE"
        return f"{self}\n(the notebook's loops, cnnlab.scratch and torch {verdict})"

    def _repr_html_(self) -> str:
        """The input (its zero padding in grey), each filter, the output, and every sum of products."""
        example = self.example
        if example is None:
            return f"<pre>{html.escape(str(self))}</pre>"
        top, _, left, _ = example.pads
        real = np.zeros(example.padded.shape[1:], bool)
        real[top : top + example.x.shape[1], left : left + example.x.shape[2]] = True
        names = channel_names(example)
        size = str(tuple(example.x.shape[1:]))
        parts = [
            _titled(f"input {names[c] + ' ' if len(names) > 1 else ''}{size}", _grid_html(p, real))
            for c, p in enumerate(example.padded)
        ]
        for o, w in enumerate(example.weight):
            for c, plane in enumerate(w):
                number = f" {o}" if len(example.weight) > 1 else ""
                name = f"filter{number}{f', {names[c]}' if len(w) > 1 else ''}"
                parts.append(_titled(name, _grid_html(plane)))
        parts += [
            _titled(f"output {_channel(o, self.reference)}", _grid_html(p))
            for o, p in enumerate(self.reference)
        ]
        verdict = "agree" if self.agree else "DISAGREE"
        settings = (
            f"bias {', '.join(format_number(b) for b in example.bias)}, stride {example.stride}, "
            f"padding {example.padding}, dilation {example.dilation}. The notebook's loops, cnnlab.scratch "
            f"and torch {verdict} (largest difference {self.max_difference:.1e})."
        )
        return (
            '<div class="cnnlab-convolution"><div style="display:flex;gap:1.5em;align-items:flex-start">'
            f"{''.join(parts)}</div><div>{html.escape(settings)}</div>{self.explain()._repr_html_()}"
            f"{explain_channels(example, self.reference)._repr_html_() if len(names) > 1 else ''}</div>"
        )

    @property
    def max_difference(self) -> float:
        return float(
            max(np.abs(self.scratch - self.reference).max(), np.abs(self.torch - self.reference).max())
        )

    @property
    def agree(self) -> bool:
        return self.max_difference <= TOLERANCE


def parse_array(text: str, name: str, ndims=(2, 3, 4)) -> np.ndarray:
    """A JSON nested list of numbers as a float64 array; ValueError naming ``name`` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"--{name} is not valid JSON ({exc.msg} at column {exc.colno}). Received: {text!r}"
        ) from None
    try:
        array = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(
            f"--{name} must be a rectangular nested list of numbers. Received: {text!r}"
        ) from None
    if array.ndim not in ndims or array.size == 0:
        raise ValueError(
            f"--{name} must be a non-empty {' or '.join(f'{n}-D' for n in ndims)} list. "
            f"Received: {array.ndim}-D, shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"--{name} must hold finite numbers. Received: {text!r}")
    return array


def _numbers(value, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float64 array of one of ``ndims`` dimensions, finite; ValueError naming ``name``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"{option(name)} must be a rectangular nested list of numbers") from None
    if array.ndim not in ndims or array.size == 0:
        raise ValueError(
            f"{option(name)} must be a non-empty {' or '.join(f'{n}-D' for n in ndims)} array. "
            f"Received: shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{option(name)} must hold finite numbers")
    return array


def make_example(x, kernel, bias=0.0, stride=1, padding=0, dilation=1) -> Example:
    """An Example from loose shapes: input (H, W) or (C, H, W); kernel (kH, kW), (C, kH, kW) or
    (C_out, C, kH, kW); bias a number or one per output channel."""
    x = _numbers(x, "input", (2, 3))
    x = x[None] if x.ndim == 2 else x  # (C, H, W)
    w = _numbers(kernel, "kernel", (2, 3, 4))
    w = np.expand_dims(w, tuple(range(4 - w.ndim)))  # (C_out, C, kH, kW)
    if w.shape[1] != x.shape[0]:
        raise ValueError(
            f"the kernel has {w.shape[1]} input channel(s) but the input has {x.shape[0]}. "
            f"Received: input shape {x.shape}, kernel shape {w.shape}"
        )
    b = (
        np.broadcast_to(np.asarray(bias, dtype=np.float64), (w.shape[0],))
        if np.ndim(bias) == 0
        else np.asarray(bias, dtype=np.float64)
    )
    if b.shape != (w.shape[0],):
        raise ValueError(
            f"bias must be one number or one per output channel ({w.shape[0]}). Received: {bias!r}"
        )
    padding = padding if isinstance(padding, str) else shapes.pair(padding, "padding")
    example = Example(
        x, w, b.copy(), shapes.pair(stride, "stride"), padding, shapes.pair(dilation, "dilation")
    )
    _check_limits(example)
    _ = example.out_hw  # refuse an impossible geometry now, naming the argument
    return example


def _check_limits(example: Example) -> None:
    """Every size within LIMITS, and the bias finite; a ValueError naming the first that is not."""
    c_out, c_in, kh, kw = example.weight.shape
    sizes = {
        "input side": max(example.x.shape[1:]),
        "channels": max(c_in, c_out),
        "kernel side": max(kh, kw),
        "padding": 0 if isinstance(example.padding, str) else max(example.padding),
        "stride": max(example.stride),
        "dilation": max(example.dilation),
    }
    flags = {"input side": option("input"), "channels": f"{option('input')}/{option('kernel')}"}
    flags["kernel side"] = option("kernel")
    for what, size in sizes.items():
        if size > LIMITS[what]:
            raise ValueError(
                f"{flags.get(what, option(what))}: the {what} is at most {LIMITS[what]} in this demo, "
                f"so it fits on a screen. Received: {size}"
            )
    if not np.isfinite(example.bias).all():
        raise ValueError(f"{option('bias')} must be finite. Received: {example.bias.tolist()}")
    (oh, ow) = shapes.conv2d_output_shape(
        example.x.shape[1:], example.weight.shape[2:], example.stride, example.padding, example.dilation
    )
    if max(oh, ow) > LIMITS["output side"]:
        raise ValueError(
            f"the output would be {oh}x{ow}; this demo shows at most {LIMITS['output side']} a side"
        )


def run(example: Example) -> Result:
    import torch
    import torch.nn.functional as F

    from cnnlab.scratch.functional import conv2d, conv2d_reference

    args = (example.x, example.weight, example.bias, example.stride, example.padding, example.dilation)
    x, weight, bias = (torch.from_numpy(np.ascontiguousarray(a)) for a in args[:3])
    with torch.no_grad():
        by_torch = F.conv2d(x, weight, bias, example.stride, example.padding, example.dilation).numpy()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, as one line
        result = Result(conv2d_reference(*args), conv2d(*args), by_torch, example)
    if not np.isfinite(result.reference).all():
        raise ValueError("the sums of products overflow float64 (beyond about 1.8e308); use smaller numbers")
    return result


def format_number(v: float) -> str:
    """A number as the explanations write it: 3, -0.5, 0.1235 (integers without decimals, else 4 digits)."""
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.4g}"


def format_grid(array: np.ndarray, indent: str = "  ") -> str:
    """A 2-D array as right-aligned rows, integers without decimals."""
    cells = [[format_number(v) for v in row] for row in np.atleast_2d(array)]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + "[" + "  ".join(c.rjust(width) for c in row) + "]" for row in cells)


class Explanation(list):
    """Each output value as its sum of products: a list of lines that ``print`` shows one per line
    and a notebook as text."""

    def __str__(self) -> str:
        return "\n".join(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _grid_html(array: np.ndarray, real: np.ndarray | None = None) -> str:
    """A 2-D array as a table of bordered cells; cells outside ``real`` (padding) in grey."""
    rows = []
    for r, row in enumerate(np.atleast_2d(array)):
        cells = []
        for c, value in enumerate(row):
            pad = real is not None and not real[r, c]
            color = "#bbb" if pad else "inherit"
            cells.append(
                f'<td style="border:1px solid #999;padding:2px 6px;text-align:right;color:{color}">'
                f"{html.escape(format_number(value))}</td>"
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table style="border-collapse:collapse">{"".join(rows)}</table>'


def _titled(title: str, body: str) -> str:
    return f"<div><div><b>{html.escape(title)}</b></div>{body}</div>"


def _channel(index: int, planes: np.ndarray) -> str:
    return f"channel {index} {tuple(planes.shape[1:])}" if len(planes) > 1 else str(tuple(planes.shape[1:]))


def channel_names(example: Example) -> tuple[str, ...]:
    """red, green, blue for a three-channel input; channel 0, 1, ... otherwise."""
    channels = example.x.shape[0]
    return CHANNEL_NAMES if channels == 3 else tuple(f"channel {c}" for c in range(channels))


def explain_channels(example: Example, result: np.ndarray) -> Explanation:
    """Each output value as the sum of one window sum per input channel, plus the bias:
    ``y[i, j] = red 27 + green 0 + blue -6 = 21``; the convolution of a colour image adds the
    three channels' sums of products."""
    xp, names = example.padded, channel_names(example)
    lines = []
    for o in range(example.weight.shape[0]):
        for i in range(example.out_hw[0]):
            for j in range(example.out_hw[1]):
                taps = example.taps(i, j)
                sums = [
                    sum(xp[c, r, s] * example.weight[o, c, p, q] for p, q, r, s in taps)
                    for c in range(len(xp))
                ]
                parts = [f"{names[c]} {format_number(total)}" for c, total in enumerate(sums)]
                if example.bias[o]:
                    parts.append(f"bias {format_number(example.bias[o])}")
                index = f"{o}, {i}, {j}" if example.weight.shape[0] > 1 else f"{i}, {j}"
                lines.append(f"y[{index}] = {' + '.join(parts)} = {format_number(result[o, i, j])}")
    return Explanation(lines)


def explain(example: Example, result: np.ndarray) -> Explanation:
    """Each output value as its sum of products, ``y[o, i, j] = x*w + ... (+ bias) = value``."""
    xp = example.padded
    lines = []
    for o in range(example.weight.shape[0]):
        for i in range(example.out_hw[0]):
            for j in range(example.out_hw[1]):
                terms = [
                    f"({format_number(xp[c, r, s])})({format_number(example.weight[o, c, p, q])})"
                    for c in range(xp.shape[0])
                    for p, q, r, s in example.taps(i, j)
                ]
                if example.bias[o]:
                    terms.append(f"({format_number(example.bias[o])}) bias")
                index = f"{o}, {i}, {j}" if example.weight.shape[0] > 1 else f"{i}, {j}"
                lines.append(f"y[{index}] = {' + '.join(terms)} = {format_number(result[o, i, j])}")
    return Explanation(lines)

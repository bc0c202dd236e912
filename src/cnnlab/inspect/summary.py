"""A model's layer table from shape arithmetic alone: output shapes, parameters, multiply-adds
and receptive fields, before anyone trains (or even runs) the network.

Each layer's output shape comes from ``cnnlab.shapes``, the one place the formulas live. What
is counted:

- multiply-adds: one per weight used per output value, per image, times the batch. A
  convolution gives ``C_out H_out W_out (C_in / groups) kH kW``, a linear layer
  ``in x out``, batch norm one per value (inference: ``x * scale + shift``). Bias additions,
  pooling and activations are not counted.
- receptive field: the input window one output value sees, ``r += d (k - 1) j`` and
  ``j *= s`` through each convolution or pooling (``j``: the distance in input pixels between
  neighbouring outputs); "all" after a linear layer, whose every output sees the whole input.
- activation memory: every layer's output for the batch, float32, as a forward pass keeps it
  for the backward.

Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016).
"""

from __future__ import annotations

import dataclasses
import html
import math

from cnnlab import shapes
from cnnlab.inspect.describe import ELEMENTWISE, Layer, Residual, describe

__all__ = ["Row", "Summary", "summarize", "format_table", "format_footer", "html_table", "layer_detail"]

BYTES_PER_VALUE = 4  # float32, as both backends train
HEADER = ("layer", "type", "output shape", "params", "mult-adds", "receptive field")


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    kind: str
    detail: str
    shape: tuple[int, ...]  # one image's output: (C, H, W) or (F,)
    params: int = 0
    trainable: int = 0
    mult_adds: int = 0  # per image
    field: tuple[int, int] | None = None  # receptive field (H, W); None means the whole input
    depth: int = 0  # nesting inside residual blocks


@dataclasses.dataclass
class Summary:
    model: str
    input_shape: tuple[int, int, int]
    batch_size: int
    rows: list[Row]
    failed: Layer | None = None  # the first layer the input does not fit
    reason: str = ""
    heading: str = ""  # printed above the table: what was summarised, as `cnnlab summary` says it
    traced: bool = False  # read from a forward pass (a module with its own forward): no receptive fields

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    def __str__(self) -> str:
        """What ``cnnlab summary`` prints: the heading, then the table."""
        return f"{self.heading}\n\n{format_table(self)}" if self.heading else format_table(self)

    def __repr__(self) -> str:  # the table, where a console or a notebook's text shows the object
        return str(self)

    def _repr_html_(self) -> str:
        """The same table for Jupyter."""
        return html_table(self)

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def mult_adds(self) -> int:
        return self.batch_size * sum(r.mult_adds for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return self.batch_size * BYTES_PER_VALUE * sum(math.prod(r.shape) for r in self.rows[1:])


class _Misfit(ValueError):
    """The input does not fit a layer; raised inside the walk, kept in Summary.failed."""

    def __init__(self, layer: Layer, reason: str):
        super().__init__(reason)
        self.layer = layer


@dataclasses.dataclass(frozen=True)
class _State:
    shape: tuple[int, ...]
    field: tuple[int, int] | None = (1, 1)
    jump: tuple[int, int] = (1, 1)
    unflattened: tuple[int, ...] | None = None  # what a Flatten flattened, for the misfit message


def summarize(model, input_shape=(1, 28, 28), batch_size: int = 1, name: str = "") -> Summary:
    """Walk ``model`` (either backend) with an input of ``input_shape`` (C, H, W).

    Never raises for an input that does not fit: the summary stops at that layer and
    records it in ``failed`` and ``reason``. A module it cannot read raises DescribeError.
    """
    layers = describe(model)
    rows = [Row("input", "", "", tuple(input_shape), field=(1, 1))]
    summary = Summary(name or type(model).__name__, tuple(input_shape), batch_size, rows)
    try:
        _walk(layers, _State(tuple(input_shape)), rows, 0)
    except _Misfit as misfit:
        summary.failed, summary.reason = misfit.layer, str(misfit)
    return summary


def _walk(layers, state: _State, rows: list[Row], depth: int) -> _State:
    for layer in layers:
        if isinstance(layer, Residual):
            state = _residual(layer, state, rows, depth)
            continue
        try:
            new, mult_adds = _step(layer, state)
        except ValueError as exc:
            raise _Misfit(layer, str(exc)) from None
        rows.append(
            Row(
                layer.name,
                layer.kind,
                layer_detail(layer),
                new.shape,
                layer.params,
                layer.trainable,
                mult_adds,
                new.field,
                depth,
            )
        )
        state = new
    return state


def _residual(block: Residual, state: _State, rows: list[Row], depth: int) -> _State:
    main = _walk(block.main, state, rows, depth + 1)
    short = _walk(block.shortcut, state, rows, depth + 1)
    add = Layer(block.name, "Add")
    if main.shape != short.shape:
        raise _Misfit(
            add,
            f"the main path gives {_shape(main.shape)} but the shortcut gives "
            f"{_shape(short.shape)}; a residual sum needs equal shapes",
        )
    field = None if None in (main.field, short.field) else tuple(map(max, main.field, short.field))
    out = _State(main.shape, field, main.jump)
    rows.append(Row(block.name, "Add", "main + shortcut", out.shape, field=field, depth=depth))
    return out


def _spatial(state: _State, channels: int | None) -> tuple[int, int, int]:
    if len(state.shape) != 3:
        raise ValueError(f"needs a (C, H, W) input but gets {_shape(state.shape)}")
    if channels is not None and state.shape[0] != channels:
        raise ValueError(
            f"expects {channels} input channel{'s' * (channels != 1)} but gets {state.shape[0]} "
            f"(shape {_shape(state.shape)})"
        )
    return state.shape


def _grow(state: _State, kernel, stride, dilation) -> tuple:
    """The receptive field and jump after a window of ``kernel`` (see the module docstring)."""
    if state.field is None:
        return None, state.jump
    k, s, d = (
        shapes.pair(v, n) for v, n in ((kernel, "kernel_size"), (stride, "stride"), (dilation, "dilation"))
    )
    field = tuple(r + dd * (kk - 1) * j for r, kk, dd, j in zip(state.field, k, d, state.jump))
    return field, tuple(j * ss for j, ss in zip(state.jump, s))


def _step(layer: Layer, state: _State) -> tuple[_State, int]:
    """(the state after ``layer``, its multiply-adds per image); ValueError if it does not fit."""
    o, kind = layer.options, layer.kind
    if kind == "Conv2d":
        c, h, w = _spatial(state, o["in_channels"])
        hw = shapes.conv2d_output_shape((h, w), o["kernel_size"], o["stride"], o["padding"], o["dilation"])
        field, jump = _grow(state, o["kernel_size"], o["stride"], o["dilation"])
        kh, kw = o["kernel_size"]
        per_output = c // o["groups"] * kh * kw
        return _State((o["out_channels"], *hw), field, jump), o["out_channels"] * math.prod(hw) * per_output
    if kind in ("MaxPool2d", "AvgPool2d"):
        c, h, w = _spatial(state, None)
        stride = o["stride"] or o["kernel_size"]
        hw = shapes.pool2d_output_shape(
            (h, w), o["kernel_size"], stride, o["padding"], o["dilation"], o["ceil_mode"]
        )
        field, jump = _grow(state, o["kernel_size"], stride, o["dilation"])
        return _State((c, *hw), field, jump), 0
    if kind in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        c, h, w = _spatial(state, None)
        size = o["output_size"] if isinstance(o["output_size"], (tuple, list)) else (o["output_size"],) * 2
        hw = tuple(i if s is None else s for i, s in zip((h, w), size))
        stride = tuple(max(i // s, 1) for i, s in zip((h, w), hw))  # the windows' typical step
        kernel = tuple(i - (s - 1) * st for i, s, st in zip((h, w), hw, stride))
        field, jump = _grow(state, kernel, stride, 1)
        return _State((c, *hw), field, jump), 0
    if kind == "Flatten":
        dims = len(state.shape) + 1  # with the batch axis, as torch counts start_dim
        start, end = o["start_dim"] % dims, o["end_dim"] % dims
        if start == 0:
            raise ValueError("flattens the batch axis (start_dim=0), which the summary does not follow")
        s = state.shape
        flat = s[: start - 1] + (math.prod(s[start - 1 : end]),) + s[end:]
        return dataclasses.replace(state, shape=flat, unflattened=s), 0
    if kind == "Linear":
        if state.shape[-1] != o["in_features"]:
            if state.unflattened is not None:
                got = f"{state.shape[-1]:,}, the flattened {_shape(state.unflattened)}"
            else:
                got = f"{state.shape[-1]:,} from shape {_shape(state.shape)}"
            raise ValueError(f"expects {o['in_features']:,} input features but gets {got}")
        rest = math.prod(state.shape[:-1])
        return _State(state.shape[:-1] + (o["out_features"],), None, state.jump), rest * o["in_features"] * o[
            "out_features"
        ]
    if kind in ("BatchNorm2d", "BatchNorm1d"):
        spatial = kind == "BatchNorm2d"
        if spatial != (len(state.shape) == 3) or state.shape[0] != o["num_features"]:
            want = "(C, H, W)" if spatial else "(C,) or (C, L)"
            raise ValueError(f"expects {want} with C = {o['num_features']} but gets {_shape(state.shape)}")
        return state, math.prod(state.shape)
    if kind in ELEMENTWISE:
        return state, 0
    raise ValueError(f"the summary does not know layer type {kind}")


def _pair_text(value) -> str:
    if isinstance(value, str):
        return value
    a, b = shapes.pair(value, "value")
    return f"{a}" if a == b else f"{a}x{b}"


def layer_detail(layer: Layer) -> str:
    """A short description of a layer's options, e.g. "1->32, 3x3" or "2x2, stride 1"."""
    o = layer.options
    if layer.kind in ("Conv2d", "MaxPool2d", "AvgPool2d"):
        k = shapes.pair(o["kernel_size"], "kernel_size")
        parts = [f"{o['in_channels']}->{o['out_channels']}"] if layer.kind == "Conv2d" else []
        parts.append(f"{k[0]}x{k[1]}")
        stride = o["stride"] or o["kernel_size"]
        defaults = {"stride": 1 if layer.kind == "Conv2d" else o["kernel_size"], "padding": 0, "dilation": 1}
        for key, value in (("stride", stride), ("padding", o["padding"]), ("dilation", o["dilation"])):
            if _pair_text(value) != _pair_text(defaults[key]):
                parts.append(f"{key} {_pair_text(value)}")
        if o.get("groups", 1) != 1:
            parts.append(f"groups {o['groups']}")
        if o.get("ceil_mode"):
            parts.append("ceil mode")
        return ", ".join(parts)
    if layer.kind == "Linear":
        return f"{o['in_features']}->{o['out_features']}"
    if layer.kind.startswith("Adaptive"):
        return f"to {_pair_text(o['output_size'])}"
    if "num_features" in o:
        return str(o["num_features"])
    if "p" in o:
        return f"p={o['p']}"
    return ""


def _shape(shape: tuple[int, ...]) -> str:
    return str(shape[0]) if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def _field(row: Row) -> str:
    return "all" if row.field is None else f"{row.field[0]}x{row.field[1]}"


def _size(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**17 else f"{n / 2**10:,.1f} KiB"


def _cells(summary: Summary) -> list[tuple[str, ...]]:
    """The table's rows as text: every layer the input reached, then the one it does not fit."""
    lines = [
        (
            ("  " * r.depth) + r.name,
            f"{r.kind} {r.detail}".strip(),
            _shape(r.shape),
            f"{r.params:,}",
            f"{r.mult_adds:,}",
            "-" if summary.traced else _field(r),
        )
        for r in summary.rows
    ]
    if summary.failed is not None:
        f = summary.failed
        lines.append(
            (
                f.name,
                f"{f.kind} {layer_detail(f) if f.kind != 'Add' else ''}".strip(),
                "does not fit",
                f"{f.params:,}",
                "-",
                "-",
            )
        )
    return lines


def format_footer(summary: Summary) -> list[str]:
    """The lines under the table: the totals, or which layer the input does not fit, and why."""
    if summary.failed is not None:
        return [
            f"input {_shape(summary.input_shape)} does not fit layer {summary.failed.name} "
            f"({summary.failed.kind}): {summary.reason}"
        ]
    memory = summary.params * BYTES_PER_VALUE
    return [
        f"parameters:            {summary.params:,} ({_size(memory)} as float32)",
        f"trainable parameters:  {summary.trainable:,}",
        f"mult-adds:             {summary.mult_adds:,} for a batch of {summary.batch_size} "
        f"({summary.mult_adds // summary.batch_size:,} per image)",
        f"activation memory:     {_size(summary.activation_bytes)} for a batch of {summary.batch_size} "
        f"(every layer's float32 output)",
    ]


def format_table(summary: Summary) -> str:
    """The table, then either the totals or which layer the input does not fit, and why."""
    lines = _cells(summary)
    widths = [max(len(str(cells[i])) for cells in [HEADER, *lines]) for i in range(len(HEADER))]
    right = {3, 4}

    def fmt(cells):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [fmt(HEADER), fmt(tuple("-" * w for w in widths)), *map(fmt, lines)]
    return "\n".join([*out, "", *format_footer(summary)])


def html_table(summary: Summary) -> str:
    """The summary for a notebook: the heading, the table once (the layer the input does not fit as
    its last row, marked), then the totals or why the input does not fit."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    rows = []
    for number, cells in enumerate(_cells(summary)):
        failed = summary.failed is not None and number == len(summary.rows)
        style = ' style="background:#fde0dd"' if failed else ""
        text = [cells[0].replace("  ", "\u00a0\u00a0"), *cells[1:]]
        rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in text) + "</tr>")
    foot = "".join(f"<div>{html.escape(line)}</div>" for line in format_footer(summary))
    title = summary.heading or f"{summary.model}, input {_shape(summary.input_shape)}"
    return (
        f'<div class="cnnlab-summary"><b>{html.escape(title)}</b>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div style="font-family: monospace; white-space: pre">{foot}</div></div>'
    )


def heading(model: str, backend: str, shape: tuple[int, ...], batch_size: int) -> str:
    """The line above the table: what was summarised."""
    return f"{model} ({backend} backend), input {tuple(shape)}, batch {batch_size}"

"""A model's layer table from shape arithmetic alone: output shapes, parameters, multiply-adds
and receptive fields, before anyone trains (or even runs) the network.

Each layer's output shape comes from ``cnnlab.shapes``, the one place the formulas live, through
its kind's record in ``cnnlab.inspect.kinds``, which also says what is counted: multiply-adds (one
per weight used per output value, per image, times the batch) and the receptive field. Activation
memory is every layer's output for the batch, float32, as a forward pass keeps it for the backward.

Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016).
"""

from __future__ import annotations

import dataclasses
import html
import math

from cnnlab.inspect.describe import Layer, Residual, describe
from cnnlab.inspect.kinds import KINDS, Flow, shape_text

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


def summarize(model, input_shape=(1, 28, 28), batch_size: int = 1, name: str = "") -> Summary:
    """Walk ``model`` (either backend) with an input of ``input_shape`` (C, H, W).

    Never raises for an input that does not fit: the summary stops at that layer and
    records it in ``failed`` and ``reason``. A module it cannot read raises DescribeError.
    """
    layers = describe(model)
    rows = [Row("input", "", "", tuple(input_shape), field=(1, 1))]
    summary = Summary(name or type(model).__name__, tuple(input_shape), batch_size, rows)
    try:
        _walk(layers, Flow(tuple(input_shape)), rows, 0)
    except _Misfit as misfit:
        summary.failed, summary.reason = misfit.layer, str(misfit)
    return summary


def _walk(layers, flow: Flow, rows: list[Row], depth: int) -> Flow:
    for layer in layers:
        if isinstance(layer, Residual):
            flow = _residual(layer, flow, rows, depth)
            continue
        kind = KINDS.get(layer.kind)
        if kind is None or kind.flow is None:  # a summary_layers(prefix) of one's own may list anything
            raise _Misfit(layer, f"the summary does not know layer type {layer.kind}")
        try:
            flow = kind.flow(layer.options, flow)
        except ValueError as exc:
            raise _Misfit(layer, str(exc)) from None
        mult_adds = kind.mult_adds(layer.options, flow.shape)
        detail = layer_detail(layer)
        rows.append(
            Row(
                layer.name,
                layer.kind,
                detail,
                flow.shape,
                layer.params,
                layer.trainable,
                mult_adds,
                flow.field,
                depth,
            )
        )
    return flow


def _residual(block: Residual, flow: Flow, rows: list[Row], depth: int) -> Flow:
    main = _walk(block.main, flow, rows, depth + 1)
    short = _walk(block.shortcut, flow, rows, depth + 1)
    add = Layer(block.name, "Add")
    if main.shape != short.shape:
        raise _Misfit(
            add,
            f"the main path gives {shape_text(main.shape)} but the shortcut gives "
            f"{shape_text(short.shape)}; a residual sum needs equal shapes",
        )
    field = (
        None  # a path that sees the whole input makes the sum see it too
        if main.field is None or short.field is None
        else (max(main.field[0], short.field[0]), max(main.field[1], short.field[1]))
    )
    out = Flow(main.shape, field, main.jump)
    rows.append(Row(block.name, "Add", layer_detail(add), out.shape, field=field, depth=depth))
    return out


def layer_detail(layer: Layer) -> str:
    """A short description of a layer's options, e.g. "1->32, 3x3" or "2x2, stride 1"."""
    kind = KINDS.get(layer.kind)
    return kind.detail(layer.options) if kind is not None else ""


def _field(row: Row) -> str:
    return "all" if row.field is None else f"{row.field[0]}x{row.field[1]}"


def _size(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**17 else f"{n / 2**10:,.1f} KiB"


def _cells(summary: Summary) -> list[tuple[str, ...]]:
    """The table's rows as text: every layer the input reached, then the one it does not fit."""
    lines: list[tuple[str, ...]] = [
        (
            ("  " * r.depth) + r.name,
            f"{r.kind} {r.detail}".strip(),
            shape_text(r.shape),
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
            f"input {shape_text(summary.input_shape)} does not fit layer {summary.failed.name} "
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
    title = summary.heading or f"{summary.model}, input {shape_text(summary.input_shape)}"
    return (
        f'<div class="cnnlab-summary"><b>{html.escape(title)}</b>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div style="font-family: monospace; white-space: pre">{foot}</div></div>'
    )


def heading(model: str, backend: str, shape: tuple[int, ...], batch_size: int) -> str:
    """The line above the table: what was summarised."""
    return f"{model} ({backend} backend), input {tuple(shape)}, batch {batch_size}"

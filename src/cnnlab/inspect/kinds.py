"""Everything cnnlab knows about each kind of layer, in one table: ``KINDS[kind]``, by torch's class name.

A record says, for its kind:

- ``read``: the options that decide the output shape, from a torch module or a ``cnnlab.scratch.nn``
  one (``describe``);
- ``flow``: the output shape and receptive field after it, or a ValueError when the input does not
  fit; ``mult_adds``: what it costs per image (``summary``, and ``traced`` for a network with its
  own ``forward()``);
- ``detail``: how the layer table describes it, "1->32, 3x3";
- ``window``: which input cells an output cell sees (the explorer's receptive fields);
- ``closeup``: the explorer's view of it up close; ``formula``: an activation's, per value;
- ``features``: whether ``cnnlab show features`` draws its maps; ``keeps_maps``: whether it passes a
  convolution's maps on, rearranged (Grad-CAM looks past it for the activation that rectifies them).

A new kind of layer is one record here, with its functions beside it.

What is counted (Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016):

- multiply-adds: one per weight used per output value, per image. A convolution gives
  ``C_out H_out W_out (C_in / groups) kH kW``, a linear layer ``in x out``, batch norm one per value
  (inference: ``x * scale + shift``). Bias additions, pooling and activations are not counted.
- receptive field: the input window one output value sees, ``r += d (k - 1) j`` and ``j *= s``
  through each convolution or pooling (``j``: the distance in input pixels between neighbouring
  outputs); "all" after a linear layer, whose every output sees the whole input.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

from cnnlab import shapes

__all__ = ["Kind", "KINDS", "Flow", "Box", "read_options", "shape_text", "pair_text"]

Box = tuple[int, int, int, int]  # (top, left, bottom, right), inclusive


@dataclasses.dataclass(frozen=True)
class Flow:
    """What reaches a layer: one image's shape, and the receptive field so far."""

    shape: tuple[int, ...]  # (C, H, W) or (F,)
    field: tuple[int, int] | None = (1, 1)  # receptive field (H, W); None means the whole input
    jump: tuple[int, int] = (1, 1)  # input pixels between neighbouring outputs
    unflattened: tuple[int, ...] | None = None  # what a Flatten flattened, for the misfit message


def shape_text(shape: tuple[int, ...]) -> str:
    """(64,) as "64", (1, 28, 28) as "(1, 28, 28)"."""
    return str(shape[0]) if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def pair_text(value) -> str:
    """3 or (3, 3) as "3", (3, 2) as "3x2"; a string ("same") as it is; None (keep the input's) as "None"."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)) and None in value:
        return "x".join(map(str, value))
    a, b = shapes.pair(value, "value")
    return f"{a}" if a == b else f"{a}x{b}"


def _opt(module, name: str, default=None):
    """An option by torch's attribute name; scratch layers may keep theirs in ``options``."""
    if hasattr(module, name):
        return getattr(module, name)
    return getattr(module, "options", {}).get(name, default)


def _spatial(flow: Flow, channels: int | None) -> tuple[int, ...]:
    if len(flow.shape) != 3:
        raise ValueError(f"needs a (C, H, W) input but gets {shape_text(flow.shape)}")
    if channels is not None and flow.shape[0] != channels:
        raise ValueError(
            f"expects {channels} input channel{'s' * (channels != 1)} but gets {flow.shape[0]} "
            f"(shape {shape_text(flow.shape)})"
        )
    return flow.shape


def _grow(flow: Flow, kernel, stride, dilation) -> tuple:
    """The receptive field and jump after a window of ``kernel`` (see the module docstring)."""
    if flow.field is None:
        return None, flow.jump
    k, s, d = (
        shapes.pair(v, n) for v, n in ((kernel, "kernel_size"), (stride, "stride"), (dilation, "dilation"))
    )
    field = tuple(r + dd * (kk - 1) * j for r, kk, dd, j in zip(flow.field, k, d, flow.jump))
    return field, tuple(j * ss for j, ss in zip(flow.jump, s))


def _sliding_window(o: dict, box: Box, pad_top: int, pad_left: int) -> Box:
    """The input cells output cells ``box`` of a kernel sliding with o's stride and dilation see."""
    top, left, bottom, right = box
    k = shapes.pair(o["kernel_size"], "kernel_size")
    s = shapes.pair(o["stride"] or o["kernel_size"], "stride")
    d = shapes.pair(o.get("dilation", 1), "dilation")
    return (
        top * s[0] - pad_top,
        left * s[1] - pad_left,
        bottom * s[0] - pad_top + d[0] * (k[0] - 1),
        right * s[1] - pad_left + d[1] * (k[1] - 1),
    )


def _sliding_detail(o: dict, conv: bool) -> str:
    """ "1->32, 3x3" for a convolution, "2x2, stride 1" for a pool: what differs from the defaults."""
    k = shapes.pair(o["kernel_size"], "kernel_size")
    parts = [f"{o['in_channels']}->{o['out_channels']}"] if conv else []
    parts.append(f"{k[0]}x{k[1]}")
    stride = o["stride"] or o["kernel_size"]
    defaults = {"stride": 1 if conv else o["kernel_size"], "padding": 0, "dilation": 1}
    for key, value in (("stride", stride), ("padding", o["padding"]), ("dilation", o["dilation"])):
        if pair_text(value) != pair_text(defaults[key]):
            parts.append(f"{key} {pair_text(value)}")
    if o.get("groups", 1) != 1:
        parts.append(f"groups {o['groups']}")
    if o.get("ceil_mode"):
        parts.append("ceil mode")
    return ", ".join(parts)


# ---- Conv2d -------------------------------------------------------------------------------------


def _conv_read(m) -> dict:
    out_channels, c_group, kh, kw = tuple(m.weight.shape)  # (C_out, C_in / groups, kH, kW)
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


def _conv_detail(o: dict) -> str:
    return _sliding_detail(o, conv=True)


def _conv_flow(o: dict, flow: Flow) -> Flow:
    _, h, w = _spatial(flow, o["in_channels"])
    hw = shapes.conv2d_output_shape((h, w), o["kernel_size"], o["stride"], o["padding"], o["dilation"])
    field, jump = _grow(flow, o["kernel_size"], o["stride"], o["dilation"])
    return Flow((o["out_channels"], *hw), field, jump)


def _conv_mult_adds(o: dict, shape: tuple[int, ...]) -> int:
    kh, kw = o["kernel_size"]
    return math.prod(shape) * (o["in_channels"] // o["groups"]) * kh * kw


def _conv_window(o: dict, box: Box, in_hw, out_hw) -> Box:
    k = shapes.pair(o["kernel_size"], "kernel_size")
    pad_top, _, pad_left, _ = shapes.conv2d_padding(o["padding"], k, o["stride"], o.get("dilation", 1))
    return _sliding_window(o, box, pad_top, pad_left)


# ---- MaxPool2d, AvgPool2d -----------------------------------------------------------------------


def _pool_read(m) -> dict:
    return dict(
        kernel_size=_opt(m, "kernel_size"),
        stride=_opt(m, "stride"),
        padding=_opt(m, "padding", 0),
        dilation=_opt(m, "dilation", 1),
        ceil_mode=bool(_opt(m, "ceil_mode", False)),
    )


def _pool_detail(o: dict) -> str:
    return _sliding_detail(o, conv=False)


def _pool_flow(o: dict, flow: Flow) -> Flow:
    c, h, w = _spatial(flow, None)
    stride = o["stride"] or o["kernel_size"]
    hw = shapes.pool2d_output_shape(
        (h, w), o["kernel_size"], stride, o["padding"], o["dilation"], o["ceil_mode"]
    )
    field, jump = _grow(flow, o["kernel_size"], stride, o["dilation"])
    return Flow((c, *hw), field, jump)


def _pool_window(o: dict, box: Box, in_hw, out_hw) -> Box:
    return _sliding_window(o, box, *shapes.pair(o["padding"], "padding"))


# ---- AdaptiveMaxPool2d, AdaptiveAvgPool2d -------------------------------------------------------


def _adaptive_read(m) -> dict:
    return dict(output_size=_opt(m, "output_size"))


def _adaptive_detail(o: dict) -> str:
    return f"to {pair_text(o['output_size'])}"


def _adaptive_flow(o: dict, flow: Flow) -> Flow:
    c, h, w = _spatial(flow, None)
    size = o["output_size"] if isinstance(o["output_size"], (tuple, list)) else (o["output_size"],) * 2
    hw = tuple(i if s is None else s for i, s in zip((h, w), size))
    stride = tuple(max(i // s, 1) for i, s in zip((h, w), hw))  # the windows' typical step
    kernel = tuple(i - (s - 1) * st for i, s, st in zip((h, w), hw, stride))
    field, jump = _grow(flow, kernel, stride, 1)
    return Flow((c, *hw), field, jump)


def _adaptive_window(o: dict, box: Box, in_hw, out_hw) -> Box:
    """Window i of n over H cells starts at floor(i H / n) and ends before ceil((i + 1) H / n)."""
    top, left, bottom, right = box
    return (
        top * in_hw[0] // out_hw[0],
        left * in_hw[1] // out_hw[1],
        math.ceil((bottom + 1) * in_hw[0] / out_hw[0]) - 1,
        math.ceil((right + 1) * in_hw[1] / out_hw[1]) - 1,
    )


# ---- Flatten, Linear ----------------------------------------------------------------------------


def _flatten_read(m) -> dict:
    return dict(start_dim=_opt(m, "start_dim", 1), end_dim=_opt(m, "end_dim", -1))


def _flatten_flow(o: dict, flow: Flow) -> Flow:
    dims = len(flow.shape) + 1  # with the batch axis, as torch counts start_dim
    start, end = o["start_dim"] % dims, o["end_dim"] % dims
    if start == 0:
        raise ValueError("flattens the batch axis (start_dim=0), which the summary does not follow")
    s = flow.shape
    flat = s[: start - 1] + (math.prod(s[start - 1 : end]),) + s[end:]
    return dataclasses.replace(flow, shape=flat, unflattened=s)


def _linear_read(m) -> dict:
    out_features, in_features = tuple(m.weight.shape)
    return dict(in_features=in_features, out_features=out_features)


def _linear_flow(o: dict, flow: Flow) -> Flow:
    if flow.shape[-1] != o["in_features"]:
        if flow.unflattened is not None:
            got = f"{flow.shape[-1]:,}, the flattened {shape_text(flow.unflattened)}"
        else:
            got = f"{flow.shape[-1]:,} from shape {shape_text(flow.shape)}"
        raise ValueError(f"expects {o['in_features']:,} input features but gets {got}")
    return Flow(flow.shape[:-1] + (o["out_features"],), None, flow.jump)


def _linear_mult_adds(o: dict, shape: tuple[int, ...]) -> int:
    return math.prod(shape[:-1]) * o["in_features"] * o["out_features"]


def _linear_detail(o: dict) -> str:
    return f"{o['in_features']}->{o['out_features']}"


def _everything(o: dict, box: Box, in_hw, out_hw) -> None:
    return None  # every output sees every input


# ---- BatchNorm2d, BatchNorm1d -------------------------------------------------------------------


def _batchnorm_read(m) -> dict:
    features = _opt(m, "num_features")
    return dict(num_features=features if features is not None else tuple(m.weight.shape)[0])


def _batchnorm_flow(o: dict, flow: Flow, spatial: bool) -> Flow:
    if spatial != (len(flow.shape) == 3) or flow.shape[0] != o["num_features"]:
        want = "(C, H, W)" if spatial else "(C,) or (C, L)"
        raise ValueError(f"expects {want} with C = {o['num_features']} but gets {shape_text(flow.shape)}")
    return flow


def _batchnorm_detail(o: dict) -> str:
    return str(o["num_features"])


def _per_value(o: dict, shape: tuple[int, ...]) -> int:
    return math.prod(shape)


# ---- elementwise: activations, dropout, identity ------------------------------------------------


def _p_read(m) -> dict:
    p = _opt(m, "p")
    return {"p": p} if p is not None else {}


def _same_flow(o: dict, flow: Flow) -> Flow:
    return flow


def _no_mult_adds(o: dict, shape: tuple[int, ...]) -> int:
    return 0


def _p_detail(o: dict) -> str:
    return f"p={o['p']}" if "p" in o else ""


def _no_detail(o: dict) -> str:
    return ""


def _cell_for_cell(o: dict, box: Box, in_hw, out_hw) -> Box:
    return box


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of layer (see the module docstring)."""

    read: Callable[[Any], dict] | None  # None: no module of its own (a residual sum)
    flow: Callable[[dict, Flow], Flow] | None
    mult_adds: Callable[[dict, tuple[int, ...]], int] = _no_mult_adds  # per image, from its output shape
    detail: Callable[[dict], str] = _p_detail
    window: Callable[[dict, Box, Any, Any], Box | None] = _cell_for_cell  # (options, box, in H W, out H W)
    closeup: str | None = None  # the explorer's view up close: "conv", "pool", "activation", ...
    formula: str | None = None  # an activation's, for one value x; ``{m.name}`` reads its module
    features: bool = False
    keeps_maps: bool = False

    @property
    def activation(self) -> bool:
        """A function applied to each value on its own, that makes the network more than linear."""
        return self.formula is not None


def _elementwise(formula: str | None = None) -> Kind:
    return Kind(_p_read, _same_flow, formula=formula, closeup="activation" if formula else None)


def _pool(read: Callable[[Any], dict], adaptive: bool) -> Kind:
    if adaptive:
        return Kind(read, _adaptive_flow, detail=_adaptive_detail, window=_adaptive_window, **_POOLS)
    return Kind(read, _pool_flow, detail=_pool_detail, window=_pool_window, **_POOLS)


def _batchnorm(spatial: bool) -> Kind:
    flow = functools.partial(_batchnorm_flow, spatial=spatial)
    # keeps_maps: a 2-d batch norm passes a convolution's maps on; a 1-d one follows a linear layer
    return Kind(_batchnorm_read, flow, _per_value, _batchnorm_detail, closeup="batchnorm", keeps_maps=spatial)


_POOLS: dict[str, Any] = dict(closeup="pool", features=True, keeps_maps=True)

KINDS: dict[str, Kind] = {
    "Conv2d": Kind(
        _conv_read, _conv_flow, _conv_mult_adds, _conv_detail, _conv_window, closeup="conv", features=True
    ),
    "MaxPool2d": _pool(_pool_read, adaptive=False),
    "AvgPool2d": _pool(lambda m: {**_pool_read(m), "dilation": 1}, adaptive=False),
    "AdaptiveAvgPool2d": _pool(_adaptive_read, adaptive=True),
    "AdaptiveMaxPool2d": _pool(_adaptive_read, adaptive=True),
    "Linear": Kind(
        _linear_read, _linear_flow, _linear_mult_adds, _linear_detail, _everything, closeup="dense"
    ),
    "Flatten": Kind(_flatten_read, _flatten_flow, detail=_no_detail, window=_everything, closeup="flatten"),
    "BatchNorm2d": _batchnorm(spatial=True),
    "BatchNorm1d": _batchnorm(spatial=False),
    # The sum that ends a residual block: a row of the table, a step of the explorer, but no module.
    "Add": Kind(None, None, detail=lambda o: "main + shortcut", closeup="add", keeps_maps=True),
    "ReLU": _elementwise("max(0, x)"),
    "ReLU6": _elementwise("min(max(0, x), 6)"),
    "LeakyReLU": _elementwise("x if x > 0, else {m.negative_slope} x"),
    "PReLU": _elementwise("x if x > 0, else a x, with a learned (one per channel, or one for all)"),
    "ELU": _elementwise("x if x > 0, else {m.alpha} (e^x - 1)"),
    "SELU": _elementwise("λ x if x > 0, else λ α (e^x - 1), with λ = 1.0507 and α = 1.6733"),
    "CELU": _elementwise("x if x > 0, else {m.alpha} (e^(x / {m.alpha}) - 1)"),
    "GELU": _elementwise("x Φ(x), Φ the normal distribution's CDF"),
    "SiLU": _elementwise("x / (1 + e^-x)"),
    "Mish": _elementwise("x tanh(ln(1 + e^x))"),
    "Sigmoid": _elementwise("1 / (1 + e^-x)"),
    "Tanh": _elementwise("tanh(x)"),
    "Hardswish": _elementwise("x min(max(x + 3, 0), 6) / 6"),
    "Hardsigmoid": _elementwise("min(max(x + 3, 0), 6) / 6"),
    "Hardtanh": _elementwise("min(max(x, {m.min_val}), {m.max_val})"),
    "Softplus": _elementwise("ln(1 + e^({m.beta} x)) / {m.beta}"),
    # Shape kept, nothing counted, and no activation: these do not make a network more than linear.
    **{
        kind: _elementwise()
        for kind in ("Softmax", "LogSoftmax", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Identity")
    },
}


def read_options(module) -> dict:
    """What decides ``module``'s output shape, by its kind's ``read``; {} for a kind not in the table."""
    kind = KINDS.get(type(module).__name__)
    return kind.read(module) if kind is not None and kind.read is not None else {}

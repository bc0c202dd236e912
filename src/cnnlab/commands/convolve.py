"""``cnnlab convolve``: one small convolution by the notebook's loops, by cnnlab's im2col and by
torch, side by side; ``--explain`` spells out every sum, ``--animate`` draws it."""

from __future__ import annotations

import argparse
import json

from cnnlab.commands.common import HelpFormatter
from cnnlab.errors import CnnlabError

NAME = "convolve"
EPILOG = """examples:
  cnnlab convolve                                   # the notebook's example: [[0,-6],[6,6]]
  cnnlab convolve --explain                         # each output value as its sum of products
  cnnlab convolve --input '[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]' \\
                  --kernel '[[1,0,-1],[1,0,-1],[1,0,-1]]' --padding 1 --stride 2
  cnnlab convolve --padding 1 --dilation 2 --animate conv.gif
  cnnlab convolve --color --explain                 # a colour image: one filter slice per channel

--input is (H, W) or (C, H, W); --kernel is (kH, kW), (C, kH, kW) or (C_out, C, kH, kW).
"""


class BadExample(CnnlabError):
    """An input, kernel or option that makes no convolution."""


def _pair_or_int(text: str, name: str, words=()):
    if text in words:
        return text
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--{name} expects N or N,M{' or ' + ' or '.join(words) if words else ''}, got {text!r}"
        ) from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"--{name} expects N or N,M, got {text!r}")
    return values[0] if len(values) == 1 else values


def add_parser(subparsers) -> None:
    from cnnlab.inspect.convolve import NOTEBOOK_INPUT, NOTEBOOK_KERNEL

    parser = subparsers.add_parser(
        NAME,
        help="compute a small convolution three ways, explain it, animate it",
        description="Run a small convolution through the notebook's loops "
        "(conv2d_reference), cnnlab's NumPy engine and torch, print input, "
        "filter and output, and say whether the three agree.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--input",
        default=json.dumps(NOTEBOOK_INPUT),
        metavar="JSON",
        help=f"the input as a JSON nested list (default: the notebook's {json.dumps(NOTEBOOK_INPUT)})",
    )
    parser.add_argument(
        "--kernel",
        default=json.dumps(NOTEBOOK_KERNEL),
        metavar="JSON",
        help=f"the filter as a JSON nested list (default: the 2x2 identity {json.dumps(NOTEBOOK_KERNEL)})",
    )
    parser.add_argument(
        "--bias",
        default="0",
        metavar="B",
        help="a number, or a JSON list with one per output channel (default: 0)",
    )
    parser.add_argument(
        "--stride",
        type=lambda t: _pair_or_int(t, "stride"),
        default=1,
        metavar="S",
        help="step between windows, S or SH,SW (default: 1)",
    )
    parser.add_argument(
        "--padding",
        type=lambda t: _pair_or_int(t, "padding", ("same", "valid")),
        default=0,
        metavar="P",
        help="zeros around the input, P, PH,PW, 'same' or 'valid' (default: 0)",
    )
    parser.add_argument(
        "--dilation",
        type=lambda t: _pair_or_int(t, "dilation"),
        default=1,
        metavar="D",
        help="spacing between kernel taps, D or DH,DW (default: 1)",
    )
    parser.add_argument(
        "--color",
        action="store_true",
        help="a colour image instead: a red square on blue, 3x5x5, and a filter whose red slice adds and "
        "blue slice subtracts; the output adds the three channels' sums (default: off)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print each output value as its sum of products (default: off)"
    )
    parser.add_argument(
        "--animate",
        default=None,
        metavar="FILE.gif",
        help="draw the filter sliding over the input into a GIF (default: none)",
    )
    parser.set_defaults(func=run)


def _example(args):
    from cnnlab.inspect.convolve import (
        COLOR_INPUT,
        COLOR_KERNEL,
        NOTEBOOK_INPUT,
        NOTEBOOK_KERNEL,
        make_example,
        parse_array,
    )

    if args.color:  # the colour example, unless --input or --kernel say otherwise
        args.input = json.dumps(COLOR_INPUT) if args.input == json.dumps(NOTEBOOK_INPUT) else args.input
        args.kernel = json.dumps(COLOR_KERNEL) if args.kernel == json.dumps(NOTEBOOK_KERNEL) else args.kernel
    x = parse_array(args.input, "input", (2, 3))
    kernel = parse_array(args.kernel, "kernel", (2, 3, 4))
    try:
        bias = float(args.bias)
    except ValueError:
        bias = parse_array(args.bias, "bias", (1,))
    return make_example(x, kernel, bias, args.stride, args.padding, args.dilation)


def _show(label: str, array, names) -> None:
    """A (C, H, W) array plane by plane; ``names`` names the planes (a word to number, or one each)."""
    from cnnlab.inspect.convolve import format_grid

    print(f"{label} {tuple(array.shape)}:" if array.shape[0] > 1 else f"{label} {tuple(array.shape[1:])}:")
    for index, plane in enumerate(array):
        if array.shape[0] > 1:
            print(f" {names[index] if isinstance(names, tuple) else f'{names} {index}'}:")
        print(format_grid(plane))


def run(args: argparse.Namespace) -> int:
    from cnnlab.inspect.convolve import channel_names, explain, explain_channels, format_grid
    from cnnlab.inspect.convolve import run as convolve

    try:
        example = _example(args)
        result = convolve(example)
    except ValueError as exc:
        raise BadExample(str(exc)) from None
    names = channel_names(example)
    if example.x.shape[0] == 3:
        print("a colour image has three channels, red, green and blue; a filter has one slice for each")
    _show("input", example.x, names)
    if sum(example.pads):
        top, bottom, left, right = example.pads
        print(f"padded with zeros (top {top}, bottom {bottom}, left {left}, right {right}):")
        for plane in example.padded:
            print(format_grid(plane))
    for o, w in enumerate(example.weight):
        _show(f"filter{f' {o}' if len(example.weight) > 1 else ''}", w, names)
    print(
        f"bias: {', '.join(f'{b:g}' for b in example.bias)}   stride {example.stride}   "
        f"padding {example.padding}   dilation {example.dilation}"
    )
    _show("output", result.reference, "output channel")
    if args.explain:
        print("each output value is a sum of products (padded input x filter):")
        for line in explain(example, result.reference):
            print("  " + line)
        if example.x.shape[0] > 1:
            print("the same values as one sum per input channel, added up:")
            for line in explain_channels(example, result.reference):
                print("  " + line)
    verdict = "agree" if result.agree else "DISAGREE"
    print(
        f"conv2d_reference, scratch conv2d and torch {verdict} "
        f"(largest difference {result.max_difference:.1e})"
    )
    if args.animate:
        from cnnlab.inspect.animate import animate

        try:
            frames = animate(example, result.reference, args.animate)
        except ValueError as exc:
            raise BadExample(str(exc)) from None
        except OSError as exc:
            raise BadExample(f"cannot write --animate {args.animate}: {exc.strerror or exc}") from None
        print(f"animation: {args.animate} ({frames} frames)")
    return 0 if result.agree else 1

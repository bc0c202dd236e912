"""``cnnlab summary MODEL``: the layer table from shape arithmetic, before any training."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter
from cnnlab.errors import CnnlabError, ConfigError

NAME = "summary"
EPILOG = """examples:
  cnnlab summary seed                         # the notebook's network on 1x28x28
  cnnlab summary convnet --batch-size 512     # mult-adds and activation memory for a batch
  cnnlab summary seed --input-shape 1,20,20   # does it fit? (no: exit 2, and why)
  cnnlab summary resnet-mini --width 2        # the residual model at twice the channels
"""


class InputDoesNotFit(CnnlabError):
    """An input shape that a layer of the model cannot take."""


def _shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three whole numbers C,H,W, got {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive whole numbers C,H,W, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="layer table: output shapes, parameters, mult-adds, receptive fields",
        description="Print a model's layers with their output shapes, parameters, "
        "multiply-adds and receptive fields, worked out from the shape "
        "arithmetic alone (nothing is run).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "model", metavar="MODEL", help="model name from the registry (`cnnlab models` lists them)"
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        metavar="C,H,W",
        help="one input's shape (default: the model's own, 1,28,28 for Fashion-MNIST)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        metavar="N",
        help="images per batch, for the mult-adds and activation memory (default: 1)",
    )
    parser.add_argument(
        "--width",
        type=float,
        default=1.0,
        metavar="W",
        help="channel-width multiplier, for vgg-mini and resnet-mini (default: 1)",
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "numpy"),
        default="torch",
        help="which engine's model to read; both give the same table (default: torch)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.inspect.describe import DescribeError
    from cnnlab.inspect.summary import heading, summarize
    from cnnlab.models import build_model, get_spec

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be a whole number >= 1. Received: {args.batch_size}")
    spec = get_spec(args.model)
    shape = args.input_shape or spec.input_shape
    model = build_model(args.model, args.backend, width=args.width)
    name = args.model if args.width == 1 else f"{args.model} at width {args.width:g}"
    try:
        summary = summarize(model, shape, args.batch_size, name=name)
    except DescribeError as exc:
        raise ConfigError(f"cannot summarise model {args.model!r}: {exc}") from None
    summary.heading = heading(name, args.backend, shape, args.batch_size)
    print(summary)
    if summary.failed is not None:
        raise InputDoesNotFit(
            f"input {shape} does not fit model {args.model!r} at layer {summary.failed.name} "
            f"({summary.failed.kind}); see the table above"
        )
    return 0

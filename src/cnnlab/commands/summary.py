"""``cnnlab summary MODEL``: the layer table from shape arithmetic, before any training."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter
from cnnlab.errors import CnnlabError

NAME = "summary"
EPILOG = """examples:
  cnnlab summary seed                         # the notebook's network on 1x28x28
  cnnlab summary convnet --batch-size 512     # mult-adds and activation memory for a batch
  cnnlab summary seed --input-shape 1,20,20   # does it fit? (no: exit 2, and why)
  cnnlab summary resnet-mini --width 2        # the residual model at twice the channels
  cnnlab summary vgg-mini --dataset cifar10   # built for 3x32x32 colour images
  cnnlab summary nets.py:build                # your own network, read from one forward pass
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
        "model",
        metavar="MODEL",
        help="model name from the registry (`cnnlab models` lists them), or FILE.py:FUNCTION",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="the dataset the model is built for: its images' shape and classes (default: fashion-mnist)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        metavar="C,H,W",
        help="walk another input's shape through the model (default: the --dataset's input shape)",
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
    from cnnlab.api.inspection import summary_table

    table = summary_table(
        args.model, args.input_shape, args.batch_size, args.backend, args.width, args.dataset
    )
    print(table)
    if table.failed is not None:
        raise InputDoesNotFit(
            f"input {table.input_shape} does not fit model {args.model!r} at layer {table.failed.name} "
            f"({table.failed.kind}); see the table above"
        )
    return 0

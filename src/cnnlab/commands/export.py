"""``cnnlab export RUN_DIR --format {onnx,safetensors} --output FILE``."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter, add_run_dir

NAME = "export"
EPILOG = """The model takes float32 images (N, C, H, W) normalised as in training, per channel
(pixels/255 - mean)/std, and returns logits (N, K). The input shape, the class names and the
normalisation are stored in the file's metadata.

examples:
  cnnlab export runs/X --format onnx --output model.onnx
  cnnlab export runs/X --format safetensors --output weights.safetensors
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="export a trained model to ONNX or its weights to safetensors",
        description="Export a trained run's model (ONNX) or weights (safetensors).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument(
        "--format",
        choices=("onnx", "safetensors"),
        default="onnx",
        help="onnx: the whole network, for onnxruntime and others; "
        "safetensors: the weights alone (default: onnx)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="where to write (default: RUN_DIR/model.onnx or RUN_DIR/model.safetensors)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.runs.export import export
    from cnnlab.runs.loader import load_run

    output = export(load_run(args.run_dir), args.format, args.output)
    print(f"{args.format} written to: {output}")
    return 0

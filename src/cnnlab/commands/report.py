"""``cnnlab report RUN_DIR``: one self-contained report.html about a trained run."""

from __future__ import annotations

import argparse

from cnnlab.commands.common import HelpFormatter, add_data_dir, add_run_dir

NAME = "report"
EPILOG = """The page holds the summary, the config, the training curves, the per-class table, the
confusion matrix, the most confident mistakes and the first-layer filters. Images are embedded,
so the one file can be mailed or opened offline.

examples:
  cnnlab report runs/X                  # writes runs/X/report.html
  cnnlab report runs/X --output /tmp/x.html --split valid
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="write a self-contained report.html for a trained run",
        description="Write one self-contained HTML page about a trained run.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_run_dir(parser)
    parser.add_argument(
        "--output", default=None, metavar="FILE", help="where to write (default: RUN_DIR/report.html)"
    )
    parser.add_argument(
        "--split",
        choices=("test", "valid"),
        default="test",
        help="which images the scores and pictures use (default: test)",
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.runs.reporting import write_report

    output = write_report(args.run_dir, args.output, args.split, args.data_dir)
    print(f"report written to: {output}")
    return 0

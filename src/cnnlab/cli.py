"""The ``cnnlab`` command line: argparse subcommands, one module each under cnnlab.commands.

Every CnnlabError becomes one line on stderr and its exit code (documented in the README):
0 done, 2 bad input or options, 3 training diverged, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from cnnlab._version import __version__
from cnnlab.errors import EXIT_INTERRUPTED, CnnlabError, InterruptedRun

COMMANDS = (
    "train",
    "compare",
    "lr-find",
    "evaluate",
    "report",
    "predict",
    "export",
    "data",
    "models",
    "summary",
    "convolve",
    "show",
    "explore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Learn, teach and experiment with convolutional neural networks on Fashion-MNIST.",
        epilog="Run `cnnlab COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cnnlab.commands.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # run clocks (metrics.csv's seconds) count from here, start-up included
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    try:
        return args.func(args)
    except InterruptedRun as exc:
        print(f"cnnlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except CnnlabError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `cnnlab ... | head` closed the pipe; not an error worth a traceback
        return 0

"""The ``cnnlab`` command line: argparse subcommands, one module each under cnnlab.commands.

Every CnnlabError becomes one line on stderr and its exit code (documented in the docs' bad-input guide):
0 done, 2 bad input or options, 3 training diverged, 130 interrupted, 141 stdout's reader left,
143 terminated. ``cnnlab.console`` guards the streams and the signals around the command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
import warnings
from collections.abc import Iterator

from cnnlab import console
from cnnlab._version import __version__
from cnnlab.errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, CnnlabError, Notice, OutputClosed

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
    """Run one command; return its exit code. ``argv`` None means this is the ``cnnlab`` process itself
    (``sys.argv``), which also guards its standard descriptors and its exit; a list (tests, scripts)
    runs the command in the calling process and leaves the process alone."""
    started = time.perf_counter()  # run clocks (metrics.csv's seconds) count from here, start-up included
    if argv is None:
        console.reserve_standard_fds()
    try:
        with console.guarded_streams(), _one_line_warnings(), console.signals_as_interrupts():
            return _run(argv, started)
    finally:
        if argv is None:
            console.ignore_signals_until_exit()


def _run(argv: list[str] | None, started: float) -> int:
    """The command, with every CnnlabError and every interrupt as one line and an exit code."""
    try:
        args = build_parser().parse_args(argv)
        args.started = started
        code = args.func(args)
        sys.stdout.flush()  # buffered output that cannot be written fails here, where it is reported
        return code
    except Notice as exc:  # interrupted, or nothing to do: said plainly, not as an error
        console.say(f"cnnlab: {exc}")
        return exc.exit_code
    except CnnlabError as exc:
        console.say(f"cnnlab: error: {exc}")
        return exc.exit_code
    except OutputClosed as exc:  # outside a run, where nothing needs saving
        if exc.exit_code != EXIT_BROKEN_PIPE:  # `| head` leaving is no error worth a line, as in coreutils
            console.say(f"cnnlab: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:  # outside training, where nothing needs saving
        console.say("cnnlab: interrupted")
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """A library's warning (Pillow, matplotlib, NumPy) as one line on stderr, each once, never with
    the source line and path Python prints by default."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            console.say(f"cnnlab: warning: {text}")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield

"""The ``cnnlab`` command line: argparse subcommands, one module each under cnnlab.commands.

Every CnnlabError becomes one line on stderr and its exit code (documented in the README):
0 done, 2 bad input or options, 3 training diverged, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator

from cnnlab._version import __version__
from cnnlab.errors import EXIT_INTERRUPTED, CnnlabError, Notice, Terminated

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
    with _one_line_warnings(), _sigterm_as_interrupt():
        try:
            return args.func(args)
        except Notice as exc:  # interrupted, or nothing to do: said plainly, not as an error
            print(f"cnnlab: {exc}", file=sys.stderr)
            return exc.exit_code
        except CnnlabError as exc:
            print(f"cnnlab: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:  # outside training, where nothing needs saving
            print("cnnlab: interrupted", file=sys.stderr)
            return getattr(exc, "exit_code", EXIT_INTERRUPTED)
        except BrokenPipeError:  # `cnnlab ... | head` closed the pipe; not an error worth a traceback
            return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, timeout, schedulers, containers) unwinds as Ctrl+C does: what is complete is
    saved, one line says how to continue, and the exit code is 143. Only in the main thread, where
    Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """A library's warning (Pillow, matplotlib, NumPy) as one line on stderr, each once, never with
    the source line and path Python prints by default."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            print(f"cnnlab: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield

"""The process around a command: its standard streams and its signals.

- **stdout that cannot be written** (``| head`` gone, ``> /dev/full``, ``>&-``) raises ``OutputClosed``
  where the program is, a KeyboardInterrupt, so a run stops exactly as Ctrl+C stops it: what is
  complete is saved and the command to continue goes to stderr. Outside a run nothing needs saving.
- **stderr that cannot be written** (``2>/dev/full``) loses the message, never the exit code: what
  cannot be written to it is dropped.
- **Signals.** SIGTERM unwinds as Ctrl+C does (exit 143). A repeat of the signal while the first
  one unwinds (three quick Ctrl+Cs) is the same request, and is ignored, so cleanup and atexit
  handlers never print a traceback. A signal that arrives while a module is being imported waits
  for the import to finish: an exception raised halfway through torch's import can abort the
  process (exit 134) on its way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from cnnlab.errors import OutputClosed, Terminated
from cnnlab.shell import printable

# A second Ctrl+C or SIGTERM this soon after the first is the same request, repeated while the first
# one unwinds; a later one (the first was somehow swallowed) interrupts again.
REPEAT_GRACE_S = 5.0


def say(line: str) -> None:
    """One line on stderr, even when it names a path that holds a newline; a stderr that cannot be
    written (``2>/dev/full``) only loses it."""
    try:
        print(printable(line), file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):  # outside guarded_streams, or no stderr at all
        _point_at_devnull(sys.stderr, 2)


def reserve_standard_fds() -> None:
    """Open /dev/null on any of fds 0-2 the process started without (``>&-``), so that no file cnnlab
    opens later (a lock, a checkpoint) gets fd 1 and receives what is printed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one


class GuardedStdout:
    """sys.stdout, with a failed write (or a stdout the process started without) raised once as
    ``OutputClosed``; what is written after that is dropped."""

    def __init__(self, stream: Any):
        self._stream, self.failed = stream, False

    def write(self, text: str) -> int:
        return self._guarded(lambda: self._stream.write(text), len(text))

    def flush(self) -> None:
        self._guarded(self._stream.flush if self._stream is not None else lambda: None, None)

    def isatty(self) -> bool:
        return self._stream is not None and not self.failed and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _guarded(self, action: Any, dropped: Any) -> Any:
        if self.failed:
            return dropped
        if self._stream is None:
            self.failed = True
            raise OutputClosed(None)
        try:
            return action()
        except OSError as exc:
            self.failed = True
            _point_at_devnull(self._stream, 1)
            raise OutputClosed(exc) from None


def _point_at_devnull(stream: Any, fd: int) -> None:
    """After a failed write to the real stdout or stderr, point its descriptor at /dev/null, so the
    bytes still buffered, flushed at exit, cannot fail again with a traceback."""
    if stream is not None and stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)


class TolerantStderr:
    """sys.stderr, with what cannot be written (``2>/dev/full``) dropped: a message may be lost, never
    the exit code (an exception while printing an error would turn it into 1)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError, AttributeError):
            _point_at_devnull(self._stream, 2)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError, AttributeError):
            _point_at_devnull(self._stream, 2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_streams() -> Iterator[None]:
    """stdout as ``GuardedStdout``, stderr as ``TolerantStderr``, for the length of a command."""
    out, err = GuardedStdout(sys.stdout), TolerantStderr(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        if sys.stdout is out:
            sys.stdout = out._stream
        if sys.stderr is err:
            sys.stderr = err._stream


class _Interrupts:
    """The handler for SIGINT and SIGTERM while a command runs (see the module docstring)."""

    def __init__(self) -> None:
        self.first: float | None = None

    def __call__(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self.first is not None and now - self.first < REPEAT_GRACE_S:
            return
        if importing():
            _deliver_again_soon(signum)
            return
        self.first = now
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def importing() -> bool:
    """Whether a module is being imported right now (its code is still running)."""
    modules = list(sys.modules.values())
    return any(getattr(getattr(m, "__spec__", None), "_initializing", False) for m in modules)


def _deliver_again_soon(signum: int) -> None:
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM, and SIGINT unless the process started with it ignored (a background job), handled by
    ``_Interrupts``. Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Interrupts()
    signums = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signums.append(signal.SIGINT)
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def ignore_signals_until_exit() -> None:
    """For the command-line process once its command is done: a late Ctrl+C or SIGTERM must not
    interrupt the interpreter's exit (atexit handlers), which would print a traceback."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)

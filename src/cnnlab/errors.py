"""The errors the command line turns into one line on stderr and an exit code.

Library code raises these; ``cnnlab.cli`` catches them, prints ``cnnlab: error: <message>``
and exits with ``exit_code``. Nothing else should ever show a user a traceback.

A message names what the user typed, in the language they typed it in: ``--lr`` and ``cnnlab train
--resume RUN`` on the command line, ``lr=`` and ``cnnlab.train(resume='RUN')`` in Python. The
Python API (``cnnlab.api``) runs inside ``python_spelling()``, and messages are built with
``option``, ``spelled`` and ``resume_command``, which read it.
"""

import contextlib
import contextvars
import os
import types
from collections.abc import Iterator

EXIT_OK = 0
EXIT_USAGE = 2  # bad input or options, as argparse uses
EXIT_DIVERGED = 3  # training produced a non-finite loss
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT
EXIT_TERMINATED = 143  # SIGTERM (kill, timeout, schedulers, containers), as shells report it
EXIT_BROKEN_PIPE = 141  # stdout's reader left (``| head``), as shells report SIGPIPE for ``yes | head``


class CnnlabError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""

    exit_code = EXIT_USAGE

    def _render_traceback_(self) -> list[str]:
        """How IPython (Jupyter) shows the error: the user's own frames and the message, none of
        cnnlab's, which say nothing a user can act on (the command line prints the message alone).
        IPython keeps the frame that raised even when it is marked ``__tracebackhide__``, hence this."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("no IPython shell")  # IPython then formats the traceback itself
        return shell.InteractiveTB.structured_traceback(type(self), self, _users_frames(self.__traceback__))


class DataError(CnnlabError):
    """The dataset is missing, corrupt or cannot be fetched."""


class ConfigError(CnnlabError):
    """An option or config file is invalid."""


class RunDirError(CnnlabError):
    """A run directory is missing, corrupt, or does not match what was asked."""


class DivergedError(CnnlabError):
    """Training produced a non-finite loss: ``loss`` (nan or inf) in ``epoch`` (None where the number
    is not known: inside one epoch's pass), and what became of the run, once known: ``epochs_saved``
    (its last saved epoch, 0 for none), or ``removed`` (its directory, gone since nothing was saved).
    The message is built from these fields, in the spelling of the caller that raised it."""

    exit_code = EXIT_DIVERGED

    def __init__(
        self, loss: float, epoch: int | None = None, epochs_saved: int | None = None, removed: object = None
    ):
        self.loss, self.epoch, self.epochs_saved, self.removed = loss, epoch, epochs_saved, removed
        when = "in this epoch" if epoch is None else f"in epoch {epoch}"
        message = f"training diverged: the loss became {loss} {when}; lower {option('lr')}"
        if removed is not None:
            message += f"; nothing was saved, so {removed} was removed"
        elif epochs_saved is not None:
            message += f". {saved_epochs(epochs_saved)}"
        super().__init__(message)

    def knowing(
        self, *, epoch: int | None = None, epochs_saved: int | None = None, removed: object = None
    ) -> "DivergedError":
        """This divergence with what became known since: its epoch, or what became of the run."""
        return DivergedError(
            self.loss,
            self.epoch if epoch is None else epoch,
            self.epochs_saved if epochs_saved is None else epochs_saved,
            self.removed if removed is None else removed,
        )

    def __reduce__(self):  # copied or pickled from its fields, not from its message
        return type(self), (self.loss, self.epoch, self.epochs_saved, self.removed)


class Notice(CnnlabError):
    """Not a mistake: the command stops early and says why (printed without "error:")."""


class InterruptedRun(Notice):
    """Ctrl+C, SIGTERM or a closed stdout; the last complete epoch is saved. ``reason``: what stopped it."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED, reason: str = "interrupted"):
        super().__init__(message)
        self.exit_code, self.reason = exit_code, reason


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds exactly as Ctrl+C does."""

    exit_code = EXIT_TERMINATED


class OutputClosed(KeyboardInterrupt):
    """stdout cannot be written any more (its pipe's reader left, a full device, closed): raised where
    the program is, so a run stops as Ctrl+C stops it (saved, with the command to continue)."""

    def __init__(self, error: OSError | None):
        import errno

        broken = error is not None and error.errno == errno.EPIPE
        if error is None:
            text = "standard output is closed"
        elif broken:
            text = "standard output is closed (Broken pipe)"
        else:
            text = f"standard output cannot be written ({error.strerror or error})"
        super().__init__(text)
        self.exit_code = EXIT_BROKEN_PIPE if broken else EXIT_USAGE


class Busy(CnnlabError):
    """A second run asked for in a process where one is training (they would share random state)."""


class AlreadyFinished(Notice):
    """``--resume`` of a run that has nothing left to do."""

    exit_code = EXIT_OK


class ImageError(CnnlabError):
    """A file given to ``cnnlab predict`` is not an image cnnlab can read."""


_PYTHON = contextvars.ContextVar("cnnlab_python_spelling", default=False)


@contextlib.contextmanager
def python_spelling() -> Iterator[None]:
    """Messages raised inside name keyword arguments and Python calls, not command-line options."""
    token = _PYTHON.set(True)
    try:
        yield
    finally:
        _PYTHON.reset(token)


def spelled(command_line: str, python: str) -> str:
    """``command_line`` on the command line, ``python`` in the Python API."""
    return python if _PYTHON.get() else command_line


def option(name: str) -> str:
    """How a message names option ``name``: ``--batch-size`` on the command line, ``batch_size=`` in
    Python."""
    return spelled("--" + name.replace("_", "-"), f"{name}=")


def resume_command(run: str | os.PathLike, epochs: int | None = None, command: str = "train") -> str:
    """The command (or the call) that continues ``run`` (a run, or with ``command="compare"`` a
    comparison), or trains it further to ``epochs`` epochs. On the command line it is quoted for a
    shell (``cnnlab.shell``), so that pasting it runs exactly it."""
    from cnnlab.shell import option as shell_option

    if _PYTHON.get():
        more = f", epochs={epochs}" if epochs is not None else ""
        return f"cnnlab.{command}(resume={str(run)!r}{more})"
    return f"cnnlab {command} {shell_option('--resume', run)}" + (
        f" --epochs {epochs}" if epochs is not None else ""
    )


def saved_epochs(epochs: int) -> str:
    """What a stopped run kept, as a sentence: its last saved epoch, or nothing."""
    if epochs == 0:
        return "no epoch was complete, so nothing was saved."
    return f"epoch {epochs} is the last saved."


def given(name: str, value: object) -> str:
    """Option ``name`` with ``value``, as the user wrote it: ``--device cuda``, or ``device='cuda'``."""
    return spelled(f"--{name.replace('_', '-')} {value}", f"{name}={value!r}")


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _users_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without the frames of cnnlab's own modules."""
    kept = []
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain

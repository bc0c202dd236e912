"""The errors the command line turns into one line on stderr and an exit code.

Library code raises these; ``cnnlab.cli`` catches them, prints ``cnnlab: error: <message>``
and exits with ``exit_code``. Nothing else should ever show a user a traceback.
"""

EXIT_OK = 0
EXIT_USAGE = 2  # bad input or options, as argparse uses
EXIT_DIVERGED = 3  # training produced a non-finite loss
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT
EXIT_TERMINATED = 143  # SIGTERM (kill, timeout, schedulers, containers), as shells report it
EXIT_BROKEN_PIPE = 141  # stdout's reader left (``| head``), as shells report SIGPIPE for ``yes | head``


class CnnlabError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""

    exit_code = EXIT_USAGE


class DataError(CnnlabError):
    """The dataset is missing, corrupt or cannot be fetched."""


class ConfigError(CnnlabError):
    """An option or config file is invalid."""


class RunDirError(CnnlabError):
    """A run directory is missing, corrupt, or does not match what was asked."""


class DivergedError(CnnlabError):
    """Training produced a non-finite loss."""

    exit_code = EXIT_DIVERGED


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

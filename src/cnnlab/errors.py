"""The errors the command line turns into one line on stderr and an exit code.

Library code raises these; ``cnnlab.cli`` catches them, prints ``cnnlab: error: <message>``
and exits with ``exit_code``. Nothing else should ever show a user a traceback.
"""

EXIT_OK = 0
EXIT_USAGE = 2  # bad input or options, as argparse uses
EXIT_DIVERGED = 3  # training produced a non-finite loss
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT
EXIT_TERMINATED = 143  # SIGTERM (kill, timeout, schedulers, containers), as shells report it


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
    """Ctrl+C or SIGTERM; the last complete epoch is saved."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds exactly as Ctrl+C does."""

    exit_code = EXIT_TERMINATED


class AlreadyFinished(Notice):
    """``--resume`` of a run that has nothing left to do."""

    exit_code = EXIT_OK


class ImageError(CnnlabError):
    """A file given to ``cnnlab predict`` is not an image cnnlab can read."""

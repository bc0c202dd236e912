"""The errors the command line turns into one line on stderr and an exit code.

Library code raises these; ``cnnlab.cli`` catches them, prints ``cnnlab: error: <message>``
and exits with ``exit_code``. Nothing else should ever show a user a traceback.
"""

EXIT_OK = 0
EXIT_USAGE = 2  # bad input or options, as argparse uses
EXIT_DIVERGED = 3  # training produced a non-finite loss
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT


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


class InterruptedRun(CnnlabError):
    """The user pressed Ctrl+C; the last complete epoch is saved."""

    exit_code = EXIT_INTERRUPTED


class ImageError(CnnlabError):
    """A file given to ``cnnlab predict`` is not an image cnnlab can read."""

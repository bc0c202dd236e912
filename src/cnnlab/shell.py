"""Commands cnnlab prints for the user to paste (``Continue with: cnnlab train --resume RUN``), quoted
so that a shell runs exactly them, on one line, whatever the path holds.

``shlex.quote`` covers spaces and shell syntax (``;``, ``$``, quotes); a path that starts with ``-``
goes after ``=`` (``--resume=-x``), where argparse never takes it for an option; a control character
(a newline) or a byte that is not UTF-8 would break the line or the quoting, so such a word is written
in bash's ``$'...'`` form (also zsh's, ksh's and POSIX 2024 sh's), with each of them escaped.
"""

from __future__ import annotations

import os
import shlex

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(word: str | os.PathLike) -> str:
    """``word`` as one shell word that a paste gives back unchanged, always on one line."""
    text = os.fspath(word)
    if text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(_escaped(c) for c in text) + "'"


def printable(text: str) -> str:
    """``text`` with each control character or undecodable byte escaped as in ``$'...'``: a message
    that names a path holding a newline stays one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{ord(char) - 0xDC00:02x}"
    if not char.isprintable():
        return "".join(f"\\x{b:02x}" for b in char.encode())
    return char


def option(flag: str, value: str | os.PathLike) -> str:
    """``--flag VALUE``, quoted; ``--flag=VALUE`` when the value starts with ``-``, which argparse would
    otherwise take for an option."""
    word = quote(value)
    return f"{flag}={word}" if word.startswith("-") else f"{flag} {word}"

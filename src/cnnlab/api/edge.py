"""The edge between the user's code and cnnlab's: every public function and method passes through
``api_edge``, which makes cnnlab's problems read as Python.

- Messages name keyword arguments and Python calls (``lr=``, ``cnnlab.train(resume='RUN')``), not
  command-line options (``cnnlab.errors.python_spelling``).
- A ``CnnlabError`` is raised again from this frame with its traceback and context dropped
  (``raise ... from None``), and this frame carries ``__tracebackhide__``, which IPython and pytest
  honour: in a notebook the error is the user's own line and the one-line message, not 15-40 lines
  of cnnlab's frames. Any other exception (a bug in a callback, in cnnlab itself) keeps its whole
  traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from cnnlab.errors import CnnlabError, python_spelling

__all__ = ["api_edge"]

F = TypeVar("F", bound=Callable)


def api_edge(function: F) -> F:
    @functools.wraps(function)
    def call(*args, **kwargs):
        __tracebackhide__ = True  # read by IPython's and pytest's traceback printers
        with python_spelling():
            try:
                return function(*args, **kwargs)
            except CnnlabError as exc:
                raise exc.with_traceback(None) from None

    return call  # type: ignore[return-value]

"""The public Python API, re-exported by ``import cnnlab``: the same runs, options, checks and error
messages as the command line, for notebooks and scripts.

Importing it is light (no torch, no matplotlib): each function imports what it needs when called.
"""

from cnnlab.api.inspection import convolve, list_models, load_data, summary
from cnnlab.api.run import Run, load_run
from cnnlab.api.training import compare, lr_find, options, train

__all__ = [
    "Run",
    "compare",
    "convolve",
    "list_models",
    "load_data",
    "load_run",
    "lr_find",
    "options",
    "summary",
    "train",
]

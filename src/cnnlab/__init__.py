"""cnnlab: learn, teach and experiment with convolutional neural networks on Fashion-MNIST.

The front door for notebooks and scripts::

    import cnnlab

    run = cnnlab.train(model="convnet", epochs=3)   # the same options as `cnnlab train`
    run.plot(); run.evaluate(); run.predict(images)
    print(cnnlab.summary("vgg-mini"))

Importing cnnlab is light: torch and matplotlib load when a function needs them. The packages
inside, by layer: ``cnnlab.data``, ``cnnlab.scratch`` (NumPy only), ``cnnlab.models``,
``cnnlab.report``, ``cnnlab.training``, ``cnnlab.runs``, ``cnnlab.inspect`` (see the module map in
the docs' development page).
"""

from cnnlab._version import __version__
from cnnlab.api import (
    Run,
    compare,
    convolve,
    list_models,
    load_data,
    load_run,
    lr_find,
    options,
    summary,
    train,
)
from cnnlab.data import CLASS_NAMES
from cnnlab.errors import (
    Busy,
    CnnlabError,
    ConfigError,
    DataError,
    DivergedError,
    ImageError,
    InterruptedRun,
    RunDirError,
)

__all__ = [
    "Busy",
    "CLASS_NAMES",
    "CnnlabError",
    "ConfigError",
    "DataError",
    "DivergedError",
    "ImageError",
    "InterruptedRun",
    "Run",
    "RunDirError",
    "__version__",
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

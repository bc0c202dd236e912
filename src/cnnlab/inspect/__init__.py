"""See inside a network: layer tables from shape arithmetic, convolution demos, and pictures of
a trained run (filters, feature maps, pooling, translation invariance).

Modules: ``kinds`` (everything known about each kind of layer, one table), ``describe`` (a model as
layer records, either backend), ``summary`` (the table) and ``traced`` (the table of a network with
its own ``forward()``), ``hooks`` (capturing what layers give, per thread), ``convolve`` and
``animate`` (one convolution, explained and drawn), ``features``, ``pooling`` and ``invariance``
(pictures of a trained run), ``saliency`` and ``looks`` (where a model looks, and its figure),
``explorer`` (the web explorer). Nothing is imported here, so importing ``cnnlab.inspect`` costs nothing.
"""

__all__ = [
    "kinds",
    "describe",
    "summary",
    "traced",
    "hooks",
    "convolve",
    "animate",
    "features",
    "pooling",
    "invariance",
    "saliency",
    "looks",
    "explorer",
]

"""See inside a network: layer tables from shape arithmetic, convolution demos, and pictures of
a trained run (filters, feature maps, pooling, translation invariance).

Modules: ``describe`` (a model as layer records, either backend), ``summary`` (the table),
``convolve`` and ``animate`` (one convolution, explained and drawn), ``trained`` (load a run),
``features``, ``pooling`` and ``invariance`` (its pictures). Nothing is imported here, so importing
``cnnlab.inspect`` costs nothing.
"""

__all__ = ["describe", "summary", "convolve", "animate", "trained", "features", "pooling", "invariance"]

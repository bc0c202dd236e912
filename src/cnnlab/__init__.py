"""cnnlab: learn, teach and experiment with convolutional neural networks.

Three layers, each importable on its own:
  cnnlab.scratch  a NumPy-only engine (no torch), the from-scratch reference
  cnnlab.shapes   output-size arithmetic, standard library only
  cnnlab.training    the PyTorch training pipeline behind ``cnnlab train``
"""

from cnnlab._version import __version__

__all__ = ["__version__"]

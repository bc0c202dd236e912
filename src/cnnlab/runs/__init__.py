"""The run directory: its layout and atomic writes (``layout``, standard library only, below the
training layer so training can write through it), and above training the one loader that
evaluate, report, predict, export, show and the Python API use (``loader``), ONNX/safetensors
export (``export``), and the evaluate and report workflows (``reporting``).

This package imports nothing itself, so importing ``cnnlab.runs.layout`` never pulls in torch.
"""

"""Above training, what is done with a finished run: the one loader that evaluate, report, predict,
export, show and the Python API use (``loader``), ONNX/safetensors export (``export``), and the
evaluate and report workflows (``reporting``). What a run directory holds, and who may write in it,
is training's (``cnnlab.training.rundir``, ``cnnlab.training.claims``).

This package imports nothing itself, so importing one of its modules pulls in only what that one needs.
"""

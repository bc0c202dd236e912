"""The PyTorch training pipeline behind ``cnnlab train``, and the workflows built on it.

``config`` (the options), ``entry`` (the one way in for the command and the Python API), ``engine``
(the interface both engines satisfy), ``torch_engine`` and ``numpy_engine``, ``loop`` (epochs and
evaluation), ``run`` (a whole run with its directory), ``rundir`` (what a run directory holds) and
``claims`` (one owner per directory), ``schedules``, ``augment``, ``distributed``, ``checkpoint``,
``rng``, ``batches``; and on top of training: ``compare`` and ``lr_find``. Import the module you
need; this package imports nothing, so ``import cnnlab.training.config`` stays light.
"""

"""Every global random state a run may draw from, as tensors a weights-only checkpoint can hold.

The engine saves torch's CPU generator with the model; this adds Python's ``random``, NumPy's
legacy global generator and each CUDA device's generator, so code that draws from any of them
(augmentation, dropout on a GPU) continues exactly where an interrupted run stopped. cnnlab's
own shuffling needs none of them: ``epoch_order`` is a pure function of (seed, epoch).

Those generators are one per process, and torch's module initialisation draws from its global one:
two runs training at once in two threads would each move the other's draws, so neither would give
the result its config gives alone. ``exclusive`` therefore lets one run train per process at a time
and refuses a second thread's run in one line (a second process has generators of its own).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from cnnlab.errors import Busy

# Re-entrant: compare trains its runs one after another in the thread that holds it.
_TRAINING = threading.RLock()


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold the process's random generators for one run; a run in another thread meanwhile is refused."""
    if not _TRAINING.acquire(blocking=False):
        raise Busy(
            "another run is training in this process, and runs in one process share torch's and NumPy's "
            "random generators (each would change the other's results); wait for it to finish, or train "
            "this one in another process"
        )
    try:
        yield
    finally:
        _TRAINING.release()


def capture_rng() -> dict:
    version, mt, gauss = random.getstate()
    legacy: Any = np.random.get_state(legacy=True)  # noqa: NPY002 (the global state is what we save)
    name, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "python_rng": torch.tensor([version, *mt], dtype=torch.int64),
        "python_rng_gauss": torch.tensor([] if gauss is None else [gauss], dtype=torch.float64),
        "numpy_rng": torch.from_numpy(np.concatenate([keys.astype(np.int64), [pos, has_gauss]])),
        "numpy_rng_gauss": torch.tensor([cached], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Set the generators ``capture_rng`` saved; keys it finds missing (older checkpoints) are left alone."""
    if "python_rng" in state:
        values = state["python_rng"].tolist()
        gauss = state["python_rng_gauss"].tolist()
        random.setstate((values[0], tuple(values[1:]), gauss[0] if gauss else None))
    if "numpy_rng" in state:
        values = state["numpy_rng"].numpy()
        np.random.set_state(  # noqa: NPY002
            (
                "MT19937",
                values[:-2].astype(np.uint32),
                int(values[-2]),
                int(values[-1]),
                float(state["numpy_rng_gauss"][0]),
            )
        )
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])

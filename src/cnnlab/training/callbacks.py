"""Callbacks: code of the user's that runs after each epoch and may stop the run, as Keras'
``callbacks=`` and Lightning's ``Callback.on_train_epoch_end`` do.

A callback is an object with an ``on_epoch_end(run_state)`` method, or a plain function of
``run_state``. It runs in the main process only (rank 0 under torchrun, which then tells the other
ranks whether to stop), after the epoch is saved and its line printed. Setting
``run_state.stop_training = True`` (Keras' name) ends the run after this epoch: the final weights
are tested and the summary written as for any finished run. An exception raised by a callback stops
the run at once with every epoch so far saved; it reaches the caller unchanged, with a note saying
what is saved and how to continue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError, option, resume_command
from cnnlab.training import distributed
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import World
from cnnlab.training.loop import FitState

__all__ = ["RunState", "Callbacks", "check_callbacks"]


@dataclasses.dataclass
class RunState:
    """What a callback sees after each epoch. ``history`` and ``metrics`` are copies."""

    epoch: int  # the epoch just finished, from 1
    epochs: int  # the epochs the run is planned for
    metrics: dict[str, float]  # this epoch's row of metrics.csv (train_loss, valid_accuracy, lr, ...)
    history: list[dict[str, float]]  # every row so far
    path: Path  # the run directory
    config: TrainConfig
    stop_training: bool = False  # set it to True to stop after this epoch

    def stop(self) -> None:
        """Stop the run after this epoch (the same as ``stop_training = True``)."""
        self.stop_training = True


def check_callbacks(callbacks: Any) -> list[Callable[[RunState], Any]]:
    """The callbacks as functions of a RunState; a ConfigError for anything else."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    found = []
    for callback in callbacks:
        method = getattr(callback, "on_epoch_end", None)
        if isinstance(callback, type):
            raise ConfigError(
                f"{option('callbacks')} takes instances; {callback.__name__} is a class: pass "
                f"{callback.__name__}(...)"
            )
        if callable(method):
            found.append(method)
        elif callable(callback):
            found.append(callback)
        else:
            raise ConfigError(
                f"{option('callbacks')} takes objects with an on_epoch_end(run_state) method, or functions "
                f"of run_state. Received: {callback!r}"
            )
    return found


class Callbacks:
    """The run's callbacks, called by ``fit`` after each saved epoch; True means stop."""

    def __init__(
        self, callbacks: Sequence[Callable[[RunState], Any]], run: Path, config: TrainConfig, world: World
    ):
        self.callbacks, self.run, self.config, self.world = list(callbacks), run, config, world

    def __call__(self, state: FitState) -> bool:
        stop = False
        if self.world.is_main:
            run_state = RunState(
                epoch=state.epochs_done,
                epochs=self.config.epochs,
                metrics=dict(state.history[-1]),
                history=[dict(row) for row in state.history],
                path=self.run,
                config=self.config,
            )
            for callback in self.callbacks:
                try:
                    callback(run_state)
                except Exception as exc:
                    if hasattr(exc, "add_note"):  # Python 3.11 and later
                        exc.add_note(
                            f"cnnlab: the run stopped after epoch {state.epochs_done}, which is saved; "
                            f"continue it with {resume_command(self.run)}"
                        )
                    raise
            stop = bool(run_state.stop_training)
        return bool(distributed.broadcast(stop, self.world))  # every rank stops at the same epoch

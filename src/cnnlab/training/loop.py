"""The training loop, backend-agnostic: small functions that return values.

``train_one_epoch`` and ``evaluate`` return metrics; ``fit`` runs the epochs, writes the
metrics and checkpoint after each one (atomically), and returns the history. The engine
(torch or numpy) does the arithmetic; nothing here branches on flags inside the batch loop.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import log_softmax

from cnnlab.data.arrays import Arrays
from cnnlab.errors import DivergedError
from cnnlab.training.batches import epoch_order, global_batches
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import SINGLE, World
from cnnlab.training.engine import Engine, Native
from cnnlab.training.rundir import validated


@dataclasses.dataclass
class EvalResult:
    loss: float
    accuracy: float
    logits: np.ndarray  # (N, K)


def evaluate(engine: Engine, x: Any, y: np.ndarray) -> EvalResult:
    """Mean cross-entropy and accuracy of ``engine``'s model on (x, y); x is backend-native."""
    if len(y) == 0:
        return EvalResult(float("nan"), float("nan"), np.zeros((0, engine.dataset.num_classes), np.float32))
    logits = engine.logits(x).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf logits give a nan loss, reported as such
        loss = -log_softmax(logits, axis=1)[np.arange(len(y)), y].mean()
    return EvalResult(float(loss), float((logits.argmax(1) == y).mean()), logits)


def train_one_epoch(
    engine: Engine,
    data: Arrays[Native],
    order: np.ndarray,
    on_batch: Callable[[int], None],
    world: World = SINGLE,
) -> dict:
    """One pass over ``data.train_x[order]`` in batches of ``engine``'s batch size; returns train_loss
    and train_accuracy. Raises DivergedError on a non-finite loss, before anything of this epoch is saved.

    The host never waits for the device inside the epoch: the order and the labels go to the device
    once, the loss and the correct count are summed there, and they are read once, at the end (the
    check for a non-finite loss with them). Under torchrun each global batch of ``batch_size *
    world.size`` is shared out between the ranks and the two sums are all-reduced once, so every rank
    stops at the same point.
    """
    labels, native_order = engine.to_native(data.train_y), engine.to_native(order)
    loss_sum: Any = 0.0
    correct: Any = 0
    for idx in global_batches(native_order, engine.config.batch_size, world.size):
        mine = world.shard(idx)
        batch_loss, batch_correct = engine.train_batch(data.train_x[mine], labels[mine])
        loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        on_batch(len(idx))
    loss_total, correct_total = world.sum(*engine.to_host([loss_sum, correct]))  # the epoch's one sync
    if not math.isfinite(loss_total):
        raise DivergedError(loss_total)
    return {"train_loss": loss_total / len(order), "train_accuracy": correct_total / len(order)}


class Progress:
    """A tqdm bar per epoch on a terminal; in Jupyter (``notebook``) one bar for the whole run,
    updated in place (``cnnlab.training.notebook``); one plain line per epoch in any case (and alone
    in logs and CI)."""

    def __init__(
        self, epochs: int, images_per_epoch: int, enabled: bool = True, stream=None, notebook: bool = False
    ):
        self.epochs, self.images = epochs, images_per_epoch
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.bars = enabled and (notebook or (self.stream is not None and self.stream.isatty()))
        self.notebook = notebook
        self.bar: Any = None
        self.notebook_bar: Any = None

    def start_epoch(self, epoch: int) -> Callable[[int], None]:
        if not self.bars:
            return lambda n: None
        if self.notebook:
            from cnnlab.training.notebook import NotebookBar

            self.notebook_bar = self.notebook_bar or NotebookBar(self.epochs, self.images)
            self.notebook_bar.start(epoch)
            return self.notebook_bar.update
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.images,
            desc=f"epoch {epoch}/{self.epochs}",
            unit="img",
            file=self.stream,
            leave=False,  # the bar goes; the epoch's line below stays, whole, whatever the width
            dynamic_ncols=True,
        )
        return self.bar.update

    def end_epoch(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.enabled:
            # A line of its own rather than the bar's postfix, which a narrow terminal cuts off (and
            # one of unknown width never shows): the validation accuracy must always be read.
            print(format_row(row), file=self.stream, flush=True)

    def close(self) -> None:
        """The run is over (finished, stopped or failed): a notebook's bar is emptied."""
        if self.notebook_bar is not None:
            self.notebook_bar.close()


def format_row(row: dict) -> str:
    parts = [
        f"epoch {row['epoch']}",
        f"train_loss {row['train_loss']:.4f}",
        f"train_acc {row['train_accuracy']:.2%}",
    ]
    if validated(row):
        parts += [f"valid_loss {row['valid_loss']:.4f}", f"valid_acc {row['valid_accuracy']:.2%}"]
    parts.append(f"lr {row['lr']:.2e}")
    if "test_accuracy" in row:
        parts.append(f"test_acc {row['test_accuracy']:.2%}")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)


@dataclasses.dataclass
class FitState:
    """What a run needs to continue: the history so far; the engine holds the rest."""

    history: list[dict] = dataclasses.field(default_factory=list)
    stopped_early: bool = False  # by early stopping (patience)
    stopped_by_callback: bool = False

    @property
    def epochs_done(self) -> int:
        return len(self.history)


def best_epoch(history: list[dict]) -> int:
    """The epoch with the lowest validation loss (the first, on ties), as early stopping watches it.
    A non-finite loss (overflowing logits) never counts as the best."""
    return min(
        history, key=lambda r: (r["valid_loss"] if math.isfinite(r["valid_loss"]) else math.inf, r["epoch"])
    )["epoch"]


def should_stop(history: list[dict], patience: int | None) -> bool:
    """Early stopping as Keras's EarlyStopping(monitor="val_loss"): ``patience`` epochs without a new low.

    A function of the history alone, so a resumed run stops exactly where an uninterrupted one would.
    """
    return patience is not None and bool(history) and history[-1]["epoch"] - best_epoch(history) >= patience


@dataclasses.dataclass
class FitContext:
    """What ``fit`` works with, gathered once: the config, the engine, the data (backend-native x,
    NumPy labels), the torchrun world, and the run clock (``seconds`` in each row is wall time since
    ``clock_start`` plus ``seconds_before``, the time spent before a resume)."""

    config: TrainConfig
    engine: Engine
    data: Arrays[Native]  # the images backend-native, the labels NumPy
    world: World = SINGLE
    clock_start: float = dataclasses.field(default_factory=time.perf_counter)
    seconds_before: float = 0.0
    # The user's callbacks (``callbacks.Callbacks``), after each saved epoch; True means stop.
    callbacks: Callable[[FitState], bool] | None = None

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.clock_start


def fit(
    ctx: FitContext,
    on_epoch_end: Callable[[FitState], None],
    progress: Progress,
    state: FitState | None = None,
) -> FitState:
    """Train ``config.epochs`` epochs from ``state``; call ``on_epoch_end`` (which saves) after each."""
    config, engine, data = ctx.config, ctx.engine, ctx.data
    state = state or FitState()
    for epoch in range(state.epochs_done + 1, config.epochs + 1):
        if should_stop(state.history, config.patience):
            break
        engine.start_epoch(epoch)
        lr = engine.lr
        order = epoch_order(len(data.train_y), config.seed, epoch)
        try:
            metrics = train_one_epoch(engine, data, order, progress.start_epoch(epoch), ctx.world)
        except DivergedError as exc:  # name the epoch, which train_one_epoch does not know
            raise exc.knowing(epoch=epoch) from None
        valid = evaluate(engine, data.valid_x, data.valid_y)
        row = {
            "epoch": epoch,
            **metrics,
            "valid_loss": valid.loss,
            "valid_accuracy": valid.accuracy,
            "lr": lr,
        }
        if config.eval_test_every_epoch:
            row["test_accuracy"] = evaluate(engine, data.test_x, data.test_y).accuracy
        row["seconds"] = ctx.seconds()
        state.history.append(row)
        if config.patience is not None and best_epoch(state.history) == epoch:
            engine.remember_best()
        on_epoch_end(state)
        progress.end_epoch(row)
        if ctx.callbacks is not None and ctx.callbacks(state):
            state.stopped_by_callback = True
            break
    if config.patience is not None and state.history:
        state.stopped_early = state.epochs_done < config.epochs and not state.stopped_by_callback
        engine.restore_best()
    return state

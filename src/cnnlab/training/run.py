"""``cnnlab train`` end to end: a run directory, the data, an engine, fit, and the final report.

``train(config, session)`` starts a run; ``resume(run_dir, session)`` continues one from its last
complete epoch, and ``resume(run_dir, session, epochs=N)`` trains one further (``further.py``). Both
return a ``RunResult``; neither prints except through ``session.log`` and the progress display.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab._version import __version__
from cnnlab.data import CLASS_NAMES, ensure_data
from cnnlab.data.arrays import Arrays, load_split
from cnnlab.errors import (
    EXIT_INTERRUPTED,
    AlreadyFinished,
    ConfigError,
    DivergedError,
    InterruptedRun,
    RunDirError,
    resume_command,
)
from cnnlab.runs import layout as rundir
from cnnlab.training import distributed, further
from cnnlab.training.batches import steps_per_epoch
from cnnlab.training.callbacks import Callbacks, RunState
from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.training.config import TrainConfig, config_of_run
from cnnlab.training.distributed import SINGLE, World
from cnnlab.training.engine import Engine, make_engine
from cnnlab.training.loop import FitContext, FitState, Progress, best_epoch, evaluate, fit
from cnnlab.training.rng import capture_rng, restore_rng
from cnnlab.training.tensorboard import DIRECTORY as TENSORBOARD_DIRECTORY
from cnnlab.training.tensorboard import TensorBoardLog


@dataclasses.dataclass
class Session:
    """How a run talks to whoever started it: the command line, a script or a notebook."""

    log: Callable[[str], None] = print
    quiet: bool = False  # no progress and no per-epoch lines
    started: float | None = None  # the time.perf_counter() the run clock counts from (the CLI's start)
    notebook: bool = False  # progress as one bar updated in place (a Jupyter kernel), even off a terminal
    callbacks: Sequence[Callable[[RunState], Any]] = ()  # the user's, after each epoch (callbacks.py)


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    summary: dict
    history: list[dict]
    report: str  # scikit-learn's classification_report on the test set


def join_world(config: TrainConfig) -> World:
    """The torchrun world this process belongs to, with its process group joined (a single process
    without torchrun)."""
    world = distributed.from_environment()
    if world.distributed:
        if config.backend == "numpy":
            raise ConfigError("the numpy backend trains in one process; run it without torchrun")
        from cnnlab.training.torch_engine import pick_device

        distributed.init(world, pick_device(config.device, world.local_rank).type)
    return world


def environment(engine: Engine, config: TrainConfig) -> dict[str, Any]:
    import torch

    return {
        "cnnlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "backend": config.backend,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **engine.describe(),
    }


def _prepare(config: TrainConfig, quiet: bool, world: World = SINGLE) -> tuple[Arrays, Engine]:
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    directory = ensure_data(config.data_dir, quiet=quiet)  # a missing dataset fails before any slow work
    steps = steps_per_epoch(config.resolved_train_size, config.batch_size, world.size)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # Decompressing and splitting the data (zlib and NumPy release the GIL) overlaps the engine's
        # start-up, which for torch is mostly imports (bench/startup.py measures the gain).
        loading = pool.submit(
            load_split, config.resolved_train_size, config.valid_size, config.seed, directory
        )
        engine = make_engine(config, steps, world)
        arrays = loading.result()
    engine.initialize(arrays.train_x)  # before any step; a resume then loads its checkpoint over it
    for name in ("train_x", "valid_x", "test_x"):
        setattr(arrays, name, engine.to_native(getattr(arrays, name)))
    return arrays, engine


def _write_metrics(run: Path, config: TrainConfig, history: list[dict]) -> None:
    columns = rundir.METRIC_COLUMNS + (("test_accuracy",) if config.eval_test_every_epoch else ())
    rundir.write_csv(run / rundir.METRICS, columns, history)


class _Saver:
    """Saves after each epoch and remembers the last epoch saved in full (for the exit message);
    with --tensorboard, logs the epoch once it is saved."""

    def __init__(self, run: Path, ctx: FitContext, epochs_saved: int):
        self.run, self.ctx, self.epochs_saved = run, ctx, epochs_saved
        self.tensorboard: TensorBoardLog | None = None
        if ctx.config.tensorboard and ctx.world.is_main:
            self.tensorboard = TensorBoardLog(run, first_epoch=epochs_saved + 1)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def __call__(self, state: FitState) -> None:
        if self.ctx.world.is_main:  # under torchrun only rank 0 writes
            # The checkpoint first: metrics.csv never lists an epoch whose state could be lost.
            save_checkpoint(
                self.run / rundir.CHECKPOINT,
                engine_state={**self.ctx.engine.state_dict(), **capture_rng()},
                config=self.ctx.config.to_dict(),
                history=state.history,
            )
        # Counted saved as soon as the checkpoint is: it alone is what --resume needs (an interrupt
        # before metrics.csv catches up is repaired by the resume).
        self.epochs_saved = state.epochs_done
        if self.ctx.world.is_main:
            _write_metrics(self.run, self.ctx.config, state.history)
        if self.tensorboard is not None:
            first_conv = next((w for w in self.ctx.engine.weights().values() if w.ndim == 4), None)
            self.tensorboard.epoch(state.history[-1], first_conv)


def train(config: TrainConfig, session: Session | None = None) -> RunResult:
    """Train a new run as ``config`` says, in a new run directory that this process claims."""
    session = session or Session()
    start = time.perf_counter() if session.started is None else session.started
    if config.data_dir is not None:  # recorded absolute, so the run evaluates from any directory
        config = dataclasses.replace(config, data_dir=str(Path(config.data_dir).resolve()))
    world = join_world(config)
    claimed = rundir.claim_new_run_dir(config.out, config.model) if world.is_main else None
    try:
        run = Path(distributed.broadcast(str(claimed.path if claimed else ""), world))  # every rank names it
        try:
            arrays, engine = _prepare(config, session.quiet, world)
            if world.is_main:
                config.save(run / rundir.CONFIG)
                rundir.write_json(
                    run / rundir.ENVIRONMENT, {**environment(engine, config), "world_size": world.size}
                )
        except RunDirError as exc:  # a full disk before any epoch: nothing to resume, start over
            if claimed:
                _discard(run)
            raise RunDirError(f"{exc}; {_removed(run)}") from None
        except BaseException:
            if claimed:  # nothing of this run exists yet: leave no empty directory behind
                _discard(run)
            raise
        if world.is_main:
            session.log(f"run directory: {run}")
        ctx = FitContext(config, engine, arrays, world, clock_start=start)
        return _fit_and_finish(run, ctx, FitState(), session)
    finally:
        if claimed:
            claimed.release()
        distributed.shutdown(world)


def resume(run_dir: str | Path, session: Session | None = None, epochs: int | None = None) -> RunResult:
    """Continue ``run_dir`` from its last complete epoch, exactly as configured; with ``epochs``
    (other than the configured number), train it further to that many epochs in all."""
    session = session or Session()
    start = time.perf_counter() if session.started is None else session.started
    run = rundir.require_run_dir(run_dir)
    config = config_of_run(run)
    world = join_world(config)
    claimed = rundir.claim(run, new=False) if world.is_main else None
    try:
        checkpoint = load_checkpoint(run / rundir.CHECKPOINT)
        if not further.same_run(checkpoint["config"], config, run):
            raise RunDirError(
                f"{run / rundir.CHECKPOINT} was saved with a different config than "
                f"{run / rundir.CONFIG}; restore the original config.json"
            )
        as_configured, history = config, checkpoint["history"]
        config = _going_on_with(run, config, history, epochs)
        arrays, engine = _prepare(config, session.quiet, world)
        _restore(engine, checkpoint, run)
        if config is not as_configured:
            engine.set_lr(config.lr)  # the next step's rate under the schedule re-planned for the new length
            if world.is_main:
                session.log(further.commit(run, as_configured, config, history, engine.lr))
        if world.is_main:
            _repair(run, config, history)
            session.log(f"resuming {run} after epoch {len(history)} of {config.epochs}")
        before = history[-1]["seconds"] if history else 0.0
        ctx = FitContext(config, engine, arrays, world, clock_start=start, seconds_before=before)
        return _fit_and_finish(run, ctx, FitState(history), session)
    finally:
        if claimed:
            claimed.release()
        distributed.shutdown(world)


def _going_on_with(run: Path, config: TrainConfig, history: list[dict], epochs: int | None) -> TrainConfig:
    """The config a resume goes on with: config.json's, or a longer one to train the run further;
    AlreadyFinished when there is nothing to do."""
    if epochs is not None and epochs != config.epochs:
        return further.extended(run, config, history, epochs)
    if _finished(run, history, config):
        done = len(history)
        raise AlreadyFinished(
            f"{run} finished after {done} epochs; nothing to resume. To train it further: "
            f"{resume_command(run, done + max(1, done // 2))}"
        )
    return config


def _finished(run: Path, history: list[dict], config: TrainConfig) -> bool:
    """Whether the run has a summary and trained all its epochs, or a callback stopped it."""
    path = run / rundir.SUMMARY
    if not path.is_file():
        return False
    summary = rundir.read_json(path)
    stopped = isinstance(summary, dict) and bool(summary.get("stopped_by_callback"))
    return len(history) >= config.epochs or stopped


def _repair(run: Path, config: TrainConfig, history: list[dict]) -> None:
    """A kill between checkpoint and metrics.csv leaves the CSV an epoch behind; the checkpoint rules."""
    try:
        _write_metrics(run, config, history)
    except RunDirError as exc:  # e.g. a full disk: the checkpoint resumed from is intact
        raise _write_failed(exc, len(history), run) from None
    rundir.remove_stale_temporaries(run)


def _restore(engine: Engine, checkpoint: dict, run: Path) -> None:
    try:
        engine.load_state_dict(checkpoint)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} does not fit model {engine.config.model!r} "
            f"({' '.join(str(exc).split())[:200]})"
        ) from None
    restore_rng(checkpoint)


def _fit_and_finish(run: Path, ctx: FitContext, state: FitState, session: Session) -> RunResult:
    progress = Progress(
        ctx.config.epochs,
        len(ctx.data.train_y),
        enabled=not session.quiet and ctx.world.is_main,
        notebook=session.notebook,
    )
    saver = _Saver(run, ctx, state.epochs_done)
    if session.callbacks:
        ctx.callbacks = Callbacks(session.callbacks, run, ctx.config, ctx.world)
    try:
        state = fit(ctx, saver, progress, state)
    except KeyboardInterrupt as exc:  # Ctrl+C, or SIGTERM turned into one by the CLI
        code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
        if _nothing_saved(run, saver, ctx):
            _discard(run)
            raise InterruptedRun(
                f"interrupted before the first epoch was complete; {_removed(run)}", code
            ) from None
        raise InterruptedRun(
            f"interrupted; {_saved(saver.epochs_saved)} Continue with: {resume_command(run)}", code
        ) from None
    except DivergedError as exc:
        if _nothing_saved(run, saver, ctx):
            _discard(run)
            raise DivergedError(f"{exc}; nothing was saved, so {run} was removed") from None
        raise DivergedError(f"{exc}. {_saved(saver.epochs_saved)}") from None
    except RunDirError as exc:  # e.g. the disk filled up while saving: the previous epoch is intact
        raise _write_failed(exc, saver.epochs_saved, run) from None
    finally:
        saver.close()
        progress.close()
    try:
        return _finish(run, ctx, state)
    except KeyboardInterrupt as exc:  # while testing: every epoch is saved, only the report is missing
        raise InterruptedRun(
            f"interrupted while testing the final weights; every epoch is saved. Finish with: "
            f"{resume_command(run)}",
            getattr(exc, "exit_code", EXIT_INTERRUPTED),
        ) from None
    except RunDirError as exc:  # every epoch is saved; only the final report is missing
        raise RunDirError(
            f"{exc}. Every epoch is saved; once fixed, finish with: {resume_command(run)}"
        ) from None


def _finish(run: Path, ctx: FitContext, state: FitState) -> RunResult:
    """Test the final weights and write the report, the summary and the plot (rank 0 only)."""
    from sklearn.metrics import classification_report

    from cnnlab.report.curves import plot_history

    config, arrays = ctx.config, ctx.data
    test = evaluate(ctx.engine, arrays.test_x, arrays.test_y)
    predictions = test.logits.argmax(1)
    report = classification_report(
        arrays.test_y,
        predictions,
        labels=range(len(CLASS_NAMES)),
        target_names=CLASS_NAMES,
        digits=4,
        zero_division=0,
    )
    history = state.history
    # Without a validation split (--valid-size 0) the validation fields are null, not NaN, which
    # is not JSON.
    best = rundir.best_validated(history)
    summary = {
        "model": config.model,
        "backend": config.backend,
        "preset": config.preset,
        "epochs": len(history),
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "final_valid_accuracy": history[-1]["valid_accuracy"] if best else None,
        "best_valid_accuracy": best["valid_accuracy"] if best else None,
        "best_valid_epoch": best["epoch"] if best else None,
        "train_size": len(arrays.train_y),
        "valid_size": len(arrays.valid_y),
        "seconds": ctx.seconds(),
        "world_size": ctx.world.size,
        "precision": ctx.engine.precision,
        **_early_stopping(config, state),
        **({"stopped_by_callback": True} if state.stopped_by_callback else {}),
    }
    if not ctx.world.is_main:
        return RunResult(run, summary, history, report)
    rundir.write_text(run / rundir.REPORT, report)
    rundir.write_json(run / rundir.SUMMARY, summary)
    if history:
        plot_history(history, run / rundir.LOSS_PLOT, title=config.title)
    return RunResult(run, summary, history, report)


def _early_stopping(config: TrainConfig, state: FitState) -> dict:
    if config.patience is None:
        return {}
    return {
        "early_stopping": {
            "patience": config.patience,
            "stopped_early": state.stopped_early,
            "best_epoch": best_epoch(state.history),
            "restored_best_weights": True,
        }
    }


def _nothing_saved(run: Path, saver: _Saver, ctx: FitContext) -> bool:
    return ctx.world.is_main and saver.epochs_saved == 0 and not (run / rundir.CHECKPOINT).exists()


def _discard(run: Path) -> None:
    """Remove what a run that saved no epoch wrote (config, environment, its claim), and the
    directory when that leaves it empty, so the same command can simply be run again. Never with a
    checkpoint there: then an epoch was saved after all, and it is kept."""
    if (run / rundir.CHECKPOINT).exists():
        return
    for name in (rundir.CONFIG, rundir.ENVIRONMENT, rundir.METRICS, rundir.LOCK):
        (run / name).unlink(missing_ok=True)
    rundir.remove_stale_temporaries(run)
    shutil.rmtree(run / TENSORBOARD_DIRECTORY, ignore_errors=True)
    with contextlib.suppress(OSError):
        run.rmdir()


def _removed(run: Path) -> str:
    return f"nothing was saved, so {run} was removed; run the same command again to start over."


def _write_failed(exc: RunDirError, epochs_saved: int, run: Path) -> RunDirError:
    """A write that failed mid-run (a full disk, a lost mount): the saved epochs are intact."""
    return RunDirError(f"{exc}. {_saved(epochs_saved)} Once fixed, continue with: {resume_command(run)}")


def _saved(epochs: int) -> str:
    if epochs == 0:
        return "no epoch was complete, so nothing was saved."
    return f"epoch {epochs} is the last saved."

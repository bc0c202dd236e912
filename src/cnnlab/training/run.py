"""``cnnlab train`` end to end: a run directory, the data, an engine, fit, and the final report.

``train(config, session)`` starts a run; ``resume(run_dir, session)`` continues one from its last
complete epoch, and ``resume(run_dir, session, epochs=N)`` trains one further (``further.py``). Both
return a ``RunResult``; neither prints except through ``session.log`` and the progress display.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import fileio
from cnnlab._version import __version__
from cnnlab.data.arrays import Arrays, split_arrays
from cnnlab.data.dataset import Dataset
from cnnlab.data.registry import get_source, open_dataset, read_dataset
from cnnlab.errors import (
    EXIT_INTERRUPTED,
    AlreadyFinished,
    ConfigError,
    DataError,
    DivergedError,
    InterruptedRun,
    RunDirError,
    resume_command,
    saved_epochs,
)
from cnnlab.shell import option
from cnnlab.training import claims, distributed, further, rundir
from cnnlab.training.batches import steps_per_epoch
from cnnlab.training.callbacks import Callbacks, RunState
from cnnlab.training.checkpoint import complete_history, load_checkpoint, save_checkpoint
from cnnlab.training.config import TrainConfig, config_of_run
from cnnlab.training.distributed import SINGLE, World
from cnnlab.training.engine import Engine, Native, make_engine
from cnnlab.training.loop import FitContext, FitState, Progress, best_epoch, evaluate, fit
from cnnlab.training.records import dataset_of_run, save_dataset
from cnnlab.training.rng import capture_rng, exclusive, restore_rng
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


def _prepare(
    config: TrainConfig, quiet: bool, world: World = SINGLE, log: Callable[[str], None] = print
) -> tuple[Dataset, Arrays[Native], Engine]:
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    source = get_source(config.dataset, config.image_size, config.color)
    described = open_dataset(config.dataset, config.image_size, config.color)
    directory = source.ensure(config.data_dir, quiet=quiet)  # a missing dataset fails before any slow work
    if not quiet and world.is_main:
        for note in getattr(source, "notes", lambda: [])():
            log(note)
    steps = steps_per_epoch(config.train_images(described.train_total), config.batch_size, world.size)
    # Decompressing and decoding the data (zlib, Pillow and NumPy release the GIL) overlaps the
    # engine's start-up, which for torch is mostly imports (bench/startup.py measures the gain).
    loading = Background(read_dataset, source, directory, config.image_size, config.color)
    engine = make_engine(config, steps, described, world)
    dataset, images = loading.result()
    arrays = split_arrays(images, config.train_size, config.valid_size, config.seed)
    engine.initialize(dataset, arrays.train_x)  # before any step; a resume then loads its checkpoint over it
    return dataset, arrays.with_images(engine.to_native), engine


class Background:
    """``function(*args)`` in a daemon thread, waited for in short joins: a signal reaches the main
    thread within a tenth of a second, and a read that hangs (a dead network mount) never holds the
    process at exit, as a ThreadPoolExecutor's worker, joined at exit, would."""

    def __init__(self, function: Callable[..., Any], *args: Any):
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._work, args=(function, args), daemon=True)
        self._thread.start()

    def _work(self, function: Callable[..., Any], args: tuple) -> None:
        try:
            self._outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self._outcome["error"] = exc

    def result(self) -> Any:
        while self._thread.is_alive():
            self._thread.join(0.1)
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]


def _write_metrics(run: Path, config: TrainConfig, history: list[dict]) -> None:
    columns = rundir.METRIC_COLUMNS + (("test_accuracy",) if config.eval_test_every_epoch else ())
    fileio.write_csv(run / rundir.METRICS, columns, history)


class _Saver:
    """Saves after each epoch and remembers the last epoch saved in full (for the exit message);
    with --tensorboard, logs the epoch once it is saved."""

    def __init__(self, run: Path, ctx: FitContext, epochs_saved: int, claimed: claims.Claim | None):
        self.run, self.ctx, self.epochs_saved, self.claimed = run, ctx, epochs_saved, claimed
        self.tensorboard: TensorBoardLog | None = None
        if ctx.config.tensorboard and ctx.world.is_main:
            self.tensorboard = TensorBoardLog(run, first_epoch=epochs_saved + 1)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def check(self) -> None:
        """Stop before writing into a directory that is no longer the one claimed (deleted, made anew)."""
        if self.claimed is not None:
            self.claimed.check()

    def __call__(self, state: FitState) -> None:
        self.check()
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
        config = dataclasses.replace(config, data_dir=_absolute_data_dir(config.data_dir))
    with exclusive():
        world = join_world(config)
        claimed = claims.claim_new_run_dir(config.out, config.model) if world.is_main else None
        try:
            # Every rank names the directory rank 0 claimed.
            run = Path(distributed.broadcast(str(claimed.path if claimed else ""), world))
            arrays, engine = _start(run, config, session, world, claimed)
            ctx = FitContext(config, engine, arrays, world, clock_start=start)
            return _fit_and_finish(run, ctx, FitState(), session, claimed)
        finally:
            if claimed:
                claimed.release()
            distributed.shutdown(world)


def _absolute_data_dir(data_dir: str) -> str:
    try:
        return str(Path(data_dir).resolve())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
        raise DataError(f"--data-dir {data_dir}: cannot use it ({exc})") from None


def _start(
    run: Path, config: TrainConfig, session: Session, world: World, claimed: claims.Claim | None
) -> tuple[Arrays[Native], Engine]:
    """A new run's start-up: the data, the engine, config.json and environment.json. Stopped or failed
    before its first epoch, the run leaves nothing behind, so the same command starts it over."""
    try:
        dataset, arrays, engine = _prepare(config, session.quiet, world, session.log)
        if world.is_main:
            _record_start(run, config, dataset, engine, world)
            session.log(f"run directory: {run}")
    except RunDirError as exc:  # a full disk before any epoch: nothing to resume, start over
        _discard(run, claimed)
        raise RunDirError(f"{exc}; {_removed(run)}") from None
    except KeyboardInterrupt as exc:
        _discard(run, claimed)
        raise InterruptedRun(
            f"{_why(exc)} before the first epoch was complete; {_removed(run)}", _code(exc), _why(exc)
        ) from None
    except BaseException:
        _discard(run, claimed)  # nothing of this run exists yet: leave no empty directory behind
        raise
    return arrays, engine


def _record_start(run: Path, config: TrainConfig, dataset: Dataset, engine: Engine, world: World) -> None:
    """What a run writes before its first epoch: its options, its dataset, where it ran, and the
    code of a model of your own (so the run reloads after the file has moved or changed)."""
    from cnnlab import user_models

    config.save(run / rundir.CONFIG)
    save_dataset(run, dataset)
    if user_models.is_user_model(config.model):
        user_models.save_into(config.model, run)
    fileio.write_json(run / rundir.ENVIRONMENT, {**environment(engine, config), "world_size": world.size})


def resume(run_dir: str | Path, session: Session | None = None, epochs: int | None = None) -> RunResult:
    """Continue ``run_dir`` from its last complete epoch, exactly as configured; with ``epochs``
    (other than the configured number), train it further to that many epochs in all."""
    session = session or Session()
    start = time.perf_counter() if session.started is None else session.started
    run = rundir.require_run_dir(run_dir)
    config = config_of_run(run)
    with exclusive():
        world = join_world(config)
        claimed = claims.claim(run, new=False) if world.is_main else None
        try:
            ctx, history = _resume_start(
                run, config, dataclasses.replace(session, started=start), world, epochs
            )
            return _fit_and_finish(run, ctx, FitState(history), session, claimed)
        finally:
            if claimed:
                claimed.release()
            distributed.shutdown(world)


def _resume_start(
    run: Path, config: TrainConfig, session: Session, world: World, epochs: int | None
) -> tuple[FitContext, list[dict]]:
    """A resume's start-up: the checkpoint checked and loaded, the data and the engine. Interrupted
    here, nothing has changed, and the same command is printed."""
    try:
        checkpoint = _checkpoint_to_resume(run, config)
        as_configured, history = config, checkpoint["history"]
        config = _going_on_with(run, config, history, epochs)
        dataset, arrays, engine = _prepare(config, session.quiet, world, session.log)
        _check_same_dataset(run, dataset)
        _restore(engine, checkpoint, run)
        if config is not as_configured:
            engine.set_lr(config.lr)  # the next step's rate under the schedule re-planned for the new length
            if world.is_main:
                session.log(further.commit(run, as_configured, config, history, engine.lr))
        if world.is_main:
            _repair(run, config, history)
            session.log(f"resuming {run} after epoch {len(history)} of {config.epochs}")
    except KeyboardInterrupt as exc:
        raise InterruptedRun(
            f"{_why(exc)} before the resumed run's first epoch; nothing changed. Continue with: "
            f"{resume_command(run)}",
            _code(exc),
            _why(exc),
        ) from None
    before = history[-1]["seconds"] if history else 0.0
    start = session.started if session.started is not None else time.perf_counter()
    return FitContext(config, engine, arrays, world, clock_start=start, seconds_before=before), history


def _checkpoint_to_resume(run: Path, config: TrainConfig) -> dict:
    if not os.path.lexists(run / rundir.CHECKPOINT) and _only_startup_files(run):
        raise RunDirError(
            f"{run} holds no checkpoint: the run stopped before its first epoch was saved, so there is "
            "nothing to resume; start it over in the same directory with: cnnlab train "
            f"{option('--config', run / rundir.CONFIG)} {option('--out', run)}"
        )
    checkpoint = load_checkpoint(run / rundir.CHECKPOINT)
    if not complete_history(checkpoint["history"]):
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} is damaged: its history lacks columns of {rundir.METRICS}"
        )
    if not further.same_run(checkpoint["config"], config, run):
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} was saved with a different config than "
            f"{run / rundir.CONFIG}; restore the original config.json"
        )
    return checkpoint


def _check_same_dataset(run: Path, dataset: Dataset) -> None:
    """A resumed run must see the data it started with (a folder may have changed since)."""
    saved = dataset_of_run(run)
    if (saved.classes, saved.input_shape) != (dataset.classes, dataset.input_shape):
        raise RunDirError(
            f"{run} was trained on {saved.title} ({len(saved.classes)} classes, images "
            f"{'x'.join(map(str, saved.input_shape))}), but its dataset now gives "
            f"{len(dataset.classes)} classes of {'x'.join(map(str, dataset.input_shape))}; restore the "
            "data it was trained on"
        )


def _only_startup_files(run: Path) -> bool:
    names = {p.name for p in run.iterdir()} - {rundir.LOCK}
    return all(n in claims.STARTUP_FILES or (n.startswith(".") and n.endswith(".tmp")) for n in names)


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
    fileio.remove_stale_temporaries(run)


def _restore(engine: Engine, checkpoint: dict, run: Path) -> None:
    try:
        engine.load_state_dict(checkpoint)
        restore_rng(checkpoint)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} does not fit model {engine.config.model!r} "
            f"({' '.join(str(exc).split())[:200]})"
        ) from None


def _fit_and_finish(
    run: Path, ctx: FitContext, state: FitState, session: Session, claimed: claims.Claim | None
) -> RunResult:
    progress = Progress(
        ctx.config.epochs,
        len(ctx.data.train_y),
        enabled=not session.quiet and ctx.world.is_main,
        notebook=session.notebook,
    )
    saver = _Saver(run, ctx, state.epochs_done, claimed)
    if session.callbacks:
        ctx.callbacks = Callbacks(session.callbacks, run, ctx.config, ctx.world)
    try:
        state = fit(ctx, saver, progress, state)
    except KeyboardInterrupt as exc:  # Ctrl+C, SIGTERM or a closed stdout, turned into one by the CLI
        if _nothing_saved(run, saver, ctx):
            _discard(run, claimed)
            raise InterruptedRun(
                f"{_why(exc)} before the first epoch was complete; {_removed(run)}", _code(exc), _why(exc)
            ) from None
        raise InterruptedRun(
            f"{_why(exc)}; {saved_epochs(saver.epochs_saved)} Continue with: {resume_command(run)}",
            _code(exc),
            _why(exc),
        ) from None
    except DivergedError as exc:
        if _nothing_saved(run, saver, ctx):
            _discard(run, claimed)
            # Not "run the same command again": the same settings would diverge the same way.
            raise exc.knowing(removed=run) from None
        raise exc.knowing(epochs_saved=saver.epochs_saved) from None
    except RunDirError as exc:  # e.g. the disk filled up while saving: the previous epoch is intact
        saver.check()  # unless the directory went away: that is said as such
        raise _write_failed(exc, saver.epochs_saved, run) from None
    finally:
        saver.close()
        progress.close()
    return _finish_saved(run, ctx, state, saver)


def _finish_saved(run: Path, ctx: FitContext, state: FitState, saver: _Saver) -> RunResult:
    """``_finish``, once every epoch is saved: what stops it now leaves only the report to write."""
    try:
        return _finish(run, ctx, state, saver.check)
    except KeyboardInterrupt as exc:  # while testing: every epoch is saved, only the report is missing
        raise InterruptedRun(
            f"{_why(exc)} while testing the final weights; every epoch is saved. Finish with: "
            f"{resume_command(run)}",
            _code(exc),
            _why(exc),
        ) from None
    except RunDirError as exc:  # every epoch is saved; only the final report is missing
        saver.check()
        raise RunDirError(
            f"{exc}. Every epoch is saved; once fixed, finish with: {resume_command(run)}"
        ) from None


def _why(exc: BaseException) -> str:
    """What stopped the run, in words: a closed stdout says so; Ctrl+C and SIGTERM are "interrupted"."""
    return str(exc) or "interrupted"


def _code(exc: BaseException) -> int:
    return getattr(exc, "exit_code", EXIT_INTERRUPTED)


def _finish(run: Path, ctx: FitContext, state: FitState, check: Callable[[], None]) -> RunResult:
    """Test the final weights and write the report, the summary and the plot (rank 0 only), after
    ``check`` (that the run directory is still the one claimed)."""
    from sklearn.metrics import classification_report

    from cnnlab.report.curves import plot_history

    config, arrays, classes = ctx.config, ctx.data, ctx.engine.dataset.classes
    test = evaluate(ctx.engine, arrays.test_x, arrays.test_y)
    predictions = test.logits.argmax(1)
    report = classification_report(
        arrays.test_y,
        predictions,
        labels=range(len(classes)),
        target_names=classes,
        digits=4,
        zero_division=0,
    )
    history = state.history
    # Without a validation split (--valid-size 0) the validation fields are null, not NaN, which
    # is not JSON.
    best = rundir.best_validated(history)
    summary = {
        "model": config.model,
        "dataset": config.dataset,
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
    check()
    fileio.write_text(run / rundir.REPORT, report)
    fileio.write_json(run / rundir.SUMMARY, summary)
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


def _discard(run: Path, claimed: claims.Claim | None) -> None:
    """Remove what a run that saved no epoch wrote (config, environment, its claim), and the
    directory when that leaves it empty, so the same command can simply be run again. Never with a
    checkpoint there (then an epoch was saved after all, and it is kept), nor in a directory that is
    no longer the one claimed, nor on a rank that claimed none."""
    if claimed is None or not claimed.intact() or (run / rundir.CHECKPOINT).exists():
        return
    for name in (
        rundir.CONFIG,
        rundir.DATASET,
        rundir.ENVIRONMENT,
        rundir.METRICS,
        "model.py",
        "model.pkl",
        rundir.LOCK,
    ):
        (run / name).unlink(missing_ok=True)
    fileio.remove_stale_temporaries(run)
    shutil.rmtree(run / TENSORBOARD_DIRECTORY, ignore_errors=True)
    with contextlib.suppress(OSError):
        run.rmdir()


def _removed(run: Path) -> str:
    return f"nothing was saved, so {run} was removed; run the same command again to start over."


def _write_failed(exc: RunDirError, epochs_saved: int, run: Path) -> RunDirError:
    """A write that failed mid-run (a full disk, a lost mount): the saved epochs are intact."""
    return RunDirError(
        f"{exc}. {saved_epochs(epochs_saved)} Once fixed, continue with: {resume_command(run)}"
    )

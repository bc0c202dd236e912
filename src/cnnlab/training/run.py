"""``cnnlab train`` end to end: a run directory, the data, an engine, fit, and the final report.

``train(config)`` starts a run; ``resume(run_dir)`` continues one from its last complete
epoch. Both return a ``RunResult``; neither prints except through ``log``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnlab import data as fmnist
from cnnlab.data import CLASS_NAMES
from cnnlab.data.arrays import load_split
from cnnlab.errors import ConfigError, DivergedError, InterruptedRun, RunDirError
from cnnlab.runs import layout as rundir
from cnnlab.training import distributed
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import SINGLE, World
from cnnlab.training.loop import FitState, Progress, best_epoch, evaluate, fit
from cnnlab.training.rng import capture_rng, restore_rng


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    summary: dict
    history: list[dict]
    report: str  # scikit-learn's classification_report on the test set


def make_engine(config: TrainConfig, steps_per_epoch: int, world: World = SINGLE):
    if config.backend == "numpy":
        from cnnlab.training.numpy_engine import NumpyEngine

        return NumpyEngine(config, steps_per_epoch, world)
    from cnnlab.training.torch_engine import TorchEngine

    return TorchEngine(config, steps_per_epoch, world)


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


def environment(engine, config: TrainConfig) -> dict:
    import torch

    import cnnlab

    return {
        "cnnlab": cnnlab.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": __import__("os").cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(getattr(engine, "device", "cpu")),
        "backend": config.backend,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _prepare(config: TrainConfig, quiet: bool, world: World = SINGLE):
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    directory = fmnist.ensure_data(
        config.data_dir, quiet=quiet
    )  # a missing dataset fails before any slow work
    steps_per_epoch = math.ceil(config.resolved_train_size / (config.batch_size * world.size))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # Decompressing and splitting the data (zlib and NumPy release the GIL) overlaps the engine's
        # start-up, which for torch is about 2 s of imports. With torch normalising the pixels, start-up
        # went from 2.59 s to 2.17 s (bench/startup.py).
        loading = pool.submit(
            load_split, config.resolved_train_size, config.valid_size, config.seed, directory
        )
        engine = make_engine(config, steps_per_epoch, world)
        arrays = loading.result()
    for name in ("train_x", "valid_x", "test_x"):
        setattr(arrays, name, engine.to_native(getattr(arrays, name)))
    return arrays, engine


def _write_metrics(run: Path, config: TrainConfig, history: list[dict]) -> None:
    columns = rundir.METRIC_COLUMNS + (("test_accuracy",) if config.eval_test_every_epoch else ())
    rundir.write_csv(run / rundir.METRICS, columns, history)


class _Saver:
    """Saves after each epoch and remembers the last epoch saved in full (for the exit message)."""

    def __init__(self, run: Path, config: TrainConfig, engine, epochs_saved: int, write: bool = True):
        self.run, self.config, self.engine, self.epochs_saved = run, config, engine, epochs_saved
        self.write = write  # under torchrun only rank 0 writes

    def __call__(self, state: FitState) -> None:
        from cnnlab.training.checkpoint import save_checkpoint

        if not self.write:
            self.epochs_saved = state.epochs_done
            return
        # The checkpoint first: metrics.csv never lists an epoch whose state could be lost.
        save_checkpoint(
            self.run / rundir.CHECKPOINT,
            engine_state={**self.engine.state_dict(), **capture_rng()},
            config=self.config.to_dict(),
            history=state.history,
        )
        _write_metrics(self.run, self.config, state.history)
        self.epochs_saved = state.epochs_done


def train(
    config: TrainConfig, log: Callable[[str], None] = print, quiet: bool = False, started: float | None = None
) -> RunResult:
    """``started``: the time.perf_counter() the run's clock counts from (the CLI passes its own start)."""
    start = time.perf_counter() if started is None else started
    world = join_world(config)
    try:
        run = rundir.new_run_dir(config.out, config.model) if world.is_main else None
        run = Path(distributed.broadcast(str(run), world))  # every rank names the same directory
        arrays, engine = _prepare(config, quiet, world)
        if world.is_main:
            config.save(run / rundir.CONFIG)
            rundir.write_json(
                run / rundir.ENVIRONMENT, {**environment(engine, config), "world_size": world.size}
            )
            log(f"run directory: {run}")
        return _fit_and_finish(config, engine, arrays, run, FitState(), start, 0.0, quiet, world)
    finally:
        distributed.shutdown(world)


def resume(
    run_dir: str | Path, log: Callable[[str], None] = print, quiet: bool = False, started: float | None = None
) -> RunResult:
    from cnnlab.training.checkpoint import load_checkpoint
    from cnnlab.training.config import resolve

    start = time.perf_counter() if started is None else started
    run = rundir.require_run_dir(run_dir)
    config = resolve({}, str(run / rundir.CONFIG))
    checkpoint = load_checkpoint(run / rundir.CHECKPOINT)
    world = join_world(config)
    try:
        return _resume(run, config, checkpoint, world, start, log, quiet)
    finally:
        distributed.shutdown(world)


def _resume(run, config, checkpoint, world, start, log, quiet) -> RunResult:
    if checkpoint["config"] != json.loads(json.dumps(config.to_dict())):  # tuples saved as lists
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} was saved with a different config than "
            f"{run / rundir.CONFIG}; restore the original config.json"
        )
    arrays, engine = _prepare(config, quiet, world)
    try:
        engine.load_state_dict(checkpoint)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise RunDirError(
            f"{run / rundir.CHECKPOINT} does not fit model {config.model!r} "
            f"({' '.join(str(exc).split())[:200]})"
        ) from None
    restore_rng(checkpoint)
    history = checkpoint["history"]
    if world.is_main:
        # A kill between the checkpoint and metrics.csv leaves the CSV an epoch behind; the checkpoint rules.
        _write_metrics(run, config, history)
        rundir.remove_stale_temporaries(run)
        log(f"resuming {run} after epoch {len(history)} of {config.epochs}")
    before = history[-1]["seconds"] if history else 0.0
    return _fit_and_finish(config, engine, arrays, run, FitState(history), start, before, quiet, world)


def _fit_and_finish(config, engine, arrays, run, state, start, seconds_before, quiet, world) -> RunResult:
    progress = Progress(config.epochs, len(arrays.train_y), enabled=not quiet and world.is_main)
    saver = _Saver(run, config, engine, state.epochs_done, write=world.is_main)
    try:
        state = fit(config, engine, arrays, saver, progress, state, start, seconds_before, world)
    except KeyboardInterrupt:
        raise InterruptedRun(
            f"interrupted; {_saved(saver.epochs_saved)} Continue with: cnnlab train --resume {run}"
        ) from None
    except DivergedError as exc:
        raise DivergedError(f"{exc}. {_saved(saver.epochs_saved)}") from None
    except RunDirError as exc:  # e.g. the disk filled up while saving: the previous epoch is intact
        raise RunDirError(
            f"{exc}. {_saved(saver.epochs_saved)} Once fixed, continue with: cnnlab train --resume {run}"
        ) from None
    return _finish(config, engine, arrays, run, state, start, seconds_before, world)


def _finish(config, engine, arrays, run, state, start, seconds_before, world) -> RunResult:
    """Test the final weights and write the report, the summary and the plot (rank 0 only)."""
    from sklearn.metrics import classification_report

    from cnnlab.report.curves import plot_history

    test = evaluate(engine, arrays.test_x, arrays.test_y)
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
    early = (
        {}
        if config.patience is None
        else {
            "early_stopping": {
                "patience": config.patience,
                "stopped_early": state.stopped_early,
                "best_epoch": best_epoch(history),
                "restored_best_weights": True,
            }
        }
    )
    summary = {
        "model": config.model,
        "backend": config.backend,
        "preset": config.preset,
        "epochs": len(history),
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "final_valid_accuracy": history[-1]["valid_accuracy"] if history else None,
        "best_valid_accuracy": max((r["valid_accuracy"] for r in history), default=None),
        "best_valid_epoch": max(history, key=lambda r: r["valid_accuracy"])["epoch"] if history else None,
        "train_size": len(arrays.train_y),
        "valid_size": len(arrays.valid_y),
        "seconds": seconds_before + time.perf_counter() - start,
        "world_size": world.size,
        "precision": getattr(engine, "precision", "64"),
        **early,
    }
    if not world.is_main:
        return RunResult(run, summary, history, report)
    rundir.write_text(run / rundir.REPORT, report)
    rundir.write_json(run / rundir.SUMMARY, summary)
    if history:
        plot_history(history, run / rundir.LOSS_PLOT, title=f"{config.model} ({config.preset or 'custom'})")
    return RunResult(run, summary, history, report)


def _saved(epochs: int) -> str:
    if epochs == 0:
        return "no epoch was complete, so nothing was saved."
    return f"epoch {epochs} is the last saved."

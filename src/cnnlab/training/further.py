"""Training a run further: ``cnnlab train --resume RUN --epochs N`` and ``cnnlab.train(resume=RUN,
epochs=N)`` continue a run in its own directory until it has trained N epochs in all.

How the schedule is re-planned. Every schedule is a function of (step, total steps)
(``schedules.py``), and the optimizer, the EMA, the random generators and the step count are
restored from the checkpoint as for any resume. Training further makes the total N epochs' steps
and goes on from the step the run reached: from there on, the rate is the one a run planned for N
epochs from the start would use.

- ``constant`` and ``step`` do not depend on the length: the rate goes on as it would have.
- ``cosine`` is stretched over N epochs: the rate rises to where that longer cosine is at this step,
  then decays to zero at epoch N.
- ``onecycle`` is not restarted (no second warm-up from a tenth of the peak): its annealing is
  stretched over N epochs, so the rate rises from the near-zero one the run ended at to where the
  longer cycle is at this step, then anneals to its floor at epoch N. The jump is said when training
  starts and recorded.

The change is recorded in ``trained_further.json`` (a list: the epochs before and after, the rate
the first new epoch starts at, the test accuracy before), config.json then holds the new number of
epochs, and summary.json is written again when the run finishes. An unfinished run given its own
number of epochs resumes exactly as without it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

from cnnlab import fileio
from cnnlab.errors import ConfigError, given, option, resume_command
from cnnlab.training import rundir
from cnnlab.training.checkpoint import same_config
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import should_stop

__all__ = ["RECORD", "extended", "commit", "same_run", "records"]

RECORD = "trained_further.json"


def records(run: Path) -> list[dict[str, Any]]:
    """Every time ``run`` was trained further, oldest first ([] if never)."""
    path = run / RECORD
    return list(rundir.read_json(path, expect=list)) if path.is_file() else []


def same_run(saved: dict, config: TrainConfig, run: Path) -> bool:
    """Whether a checkpoint's config belongs to config.json: the same, or the same but for the
    number of epochs that ``trained_further.json`` says the run was being trained further to (a run
    stopped before the first new epoch was saved)."""
    if same_config(saved, config):
        return True
    targets = [r["to_epochs"] for r in records(run)]
    at_target = bool(targets) and targets[-1] == config.epochs and isinstance(saved.get("epochs"), int)
    return at_target and same_config(saved, dataclasses.replace(config, epochs=saved["epochs"]))


def extended(run: Path, config: TrainConfig, history: list[dict], epochs: Any) -> TrainConfig:
    """``config`` with ``epochs`` epochs in all, checked against what the run has done. Writes nothing."""
    longer = dataclasses.replace(config, epochs=epochs)  # validated as any config is
    done = len(history)
    if epochs <= done:
        raise ConfigError(
            f"{option('epochs')} {epochs}: {run} has trained {done} epochs already; to train it further, "
            f"ask for more, e.g. {resume_command(run, done + max(1, done // 2))}"
        )
    if should_stop(history, config.patience):
        raise ConfigError(
            f"{run} stopped early: no lower validation loss for {config.patience} epochs "
            f"({given('patience', config.patience)}), so training further would stop at once"
        )
    return longer


def commit(run: Path, before: TrainConfig, after: TrainConfig, history: list[dict], next_lr: float) -> str:
    """Record the change (``trained_further.json``, config.json, no summary.json until the run
    finishes again); return what was done, in a sentence."""
    said = describe(before, after, history, next_lr)
    summary = rundir.read_json(run / rundir.SUMMARY) if (run / rundir.SUMMARY).is_file() else {}
    record = {
        "from_epochs": before.epochs,
        "to_epochs": after.epochs,
        "epochs_done": len(history),
        "schedule": after.schedule,
        "next_lr": next_lr,
        "test_accuracy_before": summary.get("test_accuracy") if isinstance(summary, dict) else None,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "note": said,
    }
    fileio.write_json(run / RECORD, [*records(run), record])
    after.save(run / rundir.CONFIG)
    (run / rundir.SUMMARY).unlink(missing_ok=True)  # written again, with the new epochs, at the end
    return said


def describe(before: TrainConfig, after: TrainConfig, history: list[dict], next_lr: float) -> str:
    done = len(history)
    last = f" (epoch {done} started at {history[-1]['lr']:.2e})" if history else ""
    how = {
        "constant": "the rate stays as it was",
        "step": f"the rate decays every {after.step_epochs} epochs, counting on",
        "cosine": f"the cosine schedule is stretched over {after.epochs} epochs, not restarted",
        "onecycle": f"the one-cycle schedule is stretched over {after.epochs} epochs, not restarted "
        "(no second warm-up)",
    }[after.schedule]
    return (
        f"training further from epoch {done} of {before.epochs} to {after.epochs}: {how}; "
        f"epoch {done + 1} starts at lr {next_lr:.2e}{last}"
    )

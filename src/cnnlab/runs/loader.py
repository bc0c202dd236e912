"""A trained run, loaded back: its config, its history and its model in eval mode.

``evaluate``, ``report``, ``predict`` and ``export`` all start here, so a missing, corrupt or
mismatched run directory gets the same one-line error everywhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import RunDirError
from cnnlab.runs import layout as rundir

if TYPE_CHECKING:
    from cnnlab.training.config import TrainConfig


@dataclasses.dataclass
class LoadedRun:
    path: Path
    config: TrainConfig
    model: object  # torch.nn.Module, in eval mode on the CPU
    history: list[dict]
    summary: dict | None  # summary.json, or None while the run is unfinished


def load_run(path: str | Path) -> LoadedRun:
    """Read ``path``'s config.json and checkpoint.pt and build its model with the saved weights."""
    from cnnlab.training.checkpoint import load_checkpoint
    from cnnlab.training.config import config_of_run

    path = rundir.require_run_dir(path)
    config = config_of_run(path)
    checkpoint = load_checkpoint(path / rundir.CHECKPOINT)
    saved_model = checkpoint["config"].get("model") if isinstance(checkpoint["config"], dict) else None
    if saved_model != config.model:
        raise RunDirError(
            f"{path / rundir.CHECKPOINT} holds weights of model {saved_model!r} but "
            f"{path / rundir.CONFIG} says model {config.model!r}; the two files come from different runs"
        )
    model = _model_with_weights(config, reported_weights(config, checkpoint), path / rundir.CHECKPOINT)
    summary = rundir.read_json(path / rundir.SUMMARY) if (path / rundir.SUMMARY).is_file() else None
    return LoadedRun(path, config, model, checkpoint.get("history", []), summary)


def reported_weights(config, checkpoint: dict) -> dict | None:
    """The weights the run's own test accuracy was measured with: the best epoch's under early
    stopping, else the EMA average when kept, else the last epoch's."""
    if config.patience is not None and isinstance(checkpoint.get("best_model"), dict):
        return checkpoint["best_model"]
    if isinstance(checkpoint.get("ema"), dict):
        prefix = "module."  # AveragedModel wraps the network as .module, beside its n_averaged counter
        return {k[len(prefix) :]: v for k, v in checkpoint["ema"].items() if k.startswith(prefix)}
    return checkpoint.get("model")


def _model_with_weights(config, state: dict | None, checkpoint: Path):
    import torch

    from cnnlab.models import build_model

    name = config.model
    model = build_model(name, dropout=config.dropout, width=config.width)
    if not isinstance(state, dict):
        raise RunDirError(f"{checkpoint} holds no model weights; is it a cnnlab checkpoint?")
    state = {k: torch.as_tensor(v) for k, v in state.items()}  # the numpy backend may save arrays
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # torch's message spans lines; the CLI promises one
        raise RunDirError(
            f"{checkpoint} does not fit model {name!r} ({' '.join(str(exc).split())[:200]})"
        ) from None
    return model.eval()

"""Checkpoints: everything needed to resume, loadable with ``torch.load(weights_only=True)``.

Only tensors, numbers, strings, lists and dicts go in (the config as a JSON string), so
loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from cnnlab import fileio
from cnnlab.errors import RunDirError
from cnnlab.fileio import write_atomic
from cnnlab.training.config import FIELDS, TrainConfig

FORMAT_VERSION = 1


def save_checkpoint(path: Path, *, engine_state: dict, config: dict, history: list[dict]) -> None:
    payload = {
        "format_version": FORMAT_VERSION,
        "epoch": len(history),
        "config": json.dumps(config),
        "history": history,
        **engine_state,
    }
    # Serialised in memory first: torch.save reports a full disk as a RuntimeError from its zip writer,
    # while a plain write of the bytes raises the OSError that write_atomic turns into one clear line.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, lambda fh: fh.write(buffer.getbuffer()))


def load_checkpoint(path: Path) -> dict:
    """A checkpoint, with its structure checked before anything uses it: a damaged or foreign one is
    one RunDirError that says what is wrong, never an IndexError or TypeError deep in a resume."""
    payload = _load(Path(path))
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise RunDirError(f"{path} is not a cnnlab checkpoint of format {FORMAT_VERSION}")
    try:
        payload["config"] = json.loads(payload["config"])
    except (KeyError, TypeError, ValueError, RecursionError):
        payload["config"] = None
    problem = _structure_problem(payload)
    if problem:
        raise RunDirError(f"{path} is damaged: {problem}, not what cnnlab writes")
    return payload


def _load(path: Path) -> Any:
    try:
        with fileio.open_regular(path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise RunDirError(f"{path} is empty (0 bytes), not a checkpoint; its run has no saved epoch")
            return torch.load(fh, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(
            f"{path} is missing: the run saved no complete epoch (it stopped before its first one ended)"
        ) from None
    except OSError as exc:
        raise RunDirError(f"{path} cannot be read as a checkpoint ({exc.strerror or exc})") from None
    except RunDirError:
        raise
    except Exception as exc:  # torch raises many types for a damaged file
        first_line = (str(exc).splitlines() or [""])[0][:120]
        raise RunDirError(
            f"{path} is corrupt or not a cnnlab checkpoint ({type(exc).__name__}: {first_line})"
        ) from None


# The random states as capture_rng and the engines save them: (key, dtype, length or None for any).
_RNG_TENSORS = (
    ("torch_rng", torch.uint8, None),
    ("python_rng", torch.int64, 626),
    ("python_rng_gauss", torch.float64, None),
    ("numpy_rng", torch.int64, 626),
    ("numpy_rng_gauss", torch.float64, 1),
)


def _structure_problem(payload: dict) -> str | None:
    """What in a loaded checkpoint is not as cnnlab writes it, in words; None when all is."""
    if not isinstance(payload["config"], dict):
        return "its config is not a JSON object"
    history = payload.get("history")
    if not isinstance(history, list) or not all(_is_row(row, i + 1) for i, row in enumerate(history)):
        return "its history is not a list of epoch rows"
    for key in ("model", "ema", "best_model"):
        if key in payload and not _is_weights(payload[key]):
            return f"its {key} is not a dict of tensors"
    for key in ("optimizer", "scheduler", "scaler"):
        if key in payload and not isinstance(payload[key], dict):
            return f"its {key} state is not a dict"
    for key, dtype, length in _RNG_TENSORS:
        value = payload.get(key)
        if key in payload and not (
            isinstance(value, torch.Tensor)
            and value.dtype == dtype
            and value.ndim == 1
            and (length is None or len(value) == length)
        ):
            return f"its random state {key} is not a tensor of {dtype}"
    return None


def _is_row(row: Any, epoch: int) -> bool:
    """An epoch's row: numbers by column name, numbered from 1 (``complete_history`` checks the columns)."""
    return (
        isinstance(row, dict)
        and all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in row.items())
        and row.get("epoch") == epoch
    )


def complete_history(history: list[dict]) -> bool:
    """Whether every row has every column of metrics.csv, as a run that is to go on needs."""
    from cnnlab.training.rundir import METRIC_COLUMNS

    return all(all(c in row for c in METRIC_COLUMNS) for row in history)


def _is_weights(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def same_config(saved: dict, config: TrainConfig) -> bool:
    """Whether a checkpoint's config is ``config``. An option added to cnnlab after the checkpoint was
    written counts as equal when ``config`` holds its default, so older runs still resume."""
    current = json.loads(json.dumps(config.to_dict()))  # tuples saved as lists
    if not set(saved) <= set(current):
        return False
    for name, value in current.items():
        expected = saved[name] if name in saved else json.loads(json.dumps(FIELDS[name].default))
        if expected != value:
            return False
    return True


# torch's AveragedModel keeps the averaged network as ``.module`` beside an ``n_averaged`` counter, so
# its state_dict keys carry this prefix. Both engines save the EMA in that layout.
EMA_PREFIX = "module."


def ema_weights(ema_state: dict) -> dict:
    """The averaged network's own state_dict, from an AveragedModel-style state."""
    return {k[len(EMA_PREFIX) :]: v for k, v in ema_state.items() if k.startswith(EMA_PREFIX)}


def as_ema_state(weights: dict, n_averaged: Any) -> dict:
    """The AveragedModel-style state for an averaged network's state_dict."""
    return {**{EMA_PREFIX + k: v for k, v in weights.items()}, "n_averaged": n_averaged}

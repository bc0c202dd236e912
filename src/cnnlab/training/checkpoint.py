"""Checkpoints: everything needed to resume, loadable with ``torch.load(weights_only=True)``.

Only tensors, numbers, strings, lists and dicts go in (the config as a JSON string), so
loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import RunDirError
from cnnlab.runs.layout import write_atomic
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
    if not Path(path).is_file():
        raise RunDirError(f"{path} is missing; the run saved no complete epoch to resume from")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise RunDirError(
            f"{path} is corrupt or not a cnnlab checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise RunDirError(f"{path} is not a cnnlab checkpoint of format {FORMAT_VERSION}")
    try:
        payload["config"] = json.loads(payload["config"])
        history_ok = isinstance(payload.get("history"), list)
    except (TypeError, ValueError):
        history_ok = False
    if not isinstance(payload.get("config"), dict) or not history_ok:
        raise RunDirError(f"{path} is damaged: its config or history is not what cnnlab writes")
    return payload


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

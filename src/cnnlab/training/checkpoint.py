"""Checkpoints: everything needed to resume, loadable with ``torch.load(weights_only=True)``.

Only tensors, numbers, strings, lists and dicts go in (the config as a JSON string), so
loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cnnlab.errors import RunDirError
from cnnlab.runs.layout import write_atomic

FORMAT_VERSION = 1


def save_checkpoint(path: Path, *, engine_state: dict, config: dict, history: list[dict]) -> None:
    payload = {
        "format_version": FORMAT_VERSION,
        "epoch": len(history),
        "config": json.dumps(config),
        "history": history,
        **engine_state,
    }
    write_atomic(path, lambda fh: torch.save(payload, fh))


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
    payload["config"] = json.loads(payload["config"])
    return payload

"""For every channel of every layer, the test images that excite it most (as Zeiler and Fergus
2014 and CS231n show them): computed once, in one pass over the test set, and cached in the run
directory.

A channel's response to an image is its map's largest value (a detector fires somewhere); a
dense layer's neuron is its one value. Residual sums and Flatten (a reshape of the layer before)
have no entry of their own. The cache, ``RUN_DIR/top_images.npz``, is written atomically and
keyed by the checkpoint it was computed from and the test set's labels, so a new epoch of a run
still training, or another test set, computes it afresh; a run directory that cannot be written
keeps it in memory.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from cnnlab.inspect.explorer.network import Network

__all__ = ["CACHE", "KEEP", "TopImages", "fingerprint"]

CACHE = "top_images.npz"
KEEP = 9  # images per channel: a 3 x 3 grid on the page
BATCH = 256


def fingerprint(checkpoint: Path, labels: np.ndarray) -> str:
    """What the cache was computed from: the checkpoint's size and time, and the test labels."""
    stat = checkpoint.stat()
    digest = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()[:16]
    return f"{stat.st_size}-{stat.st_mtime_ns}-{len(labels)}-{digest}"


def _responses(network: Network, images: np.ndarray) -> dict[int, np.ndarray]:
    """step index -> (N, C) float32: each channel's peak (or each neuron's value) per image."""
    shape = network.input_shape
    parts = [
        network.responses(network.dataset.normalize(images[s : s + BATCH].reshape(-1, *shape)))
        for s in range(0, len(images), BATCH)
    ]
    return {i: np.concatenate([p[i] for p in parts]) for i in parts[0]} if parts else {}


class TopImages:
    """One run's top images, computed on first use (once, whoever asks) and cached."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.lock = threading.Lock()
        self.key: str | None = None
        self.tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # step -> (indices, values), (C, KEEP)

    def of(self, network: Network, images: np.ndarray, labels: np.ndarray, index: int, channel: int) -> dict:
        """The top images of ``channel`` of step ``index``: {"images": [{"index", "value"}, ...]}."""
        if not 0 <= index < len(network.steps):
            raise ValueError(f"layer must be in 0..{len(network.steps) - 1}. Received: {index}")
        with self.lock:
            self._ensure(network, images, labels)
        if index not in self.tables:
            kind = network.steps[index].kind
            raise ValueError(f"layer {index} is a {kind}, which has no channels of its own to rank images by")
        indices, values = self.tables[index]
        if not 0 <= channel < len(indices):
            raise ValueError(f"channel must be in 0..{len(indices) - 1}. Received: channel={channel}")
        return {
            "layer": index,
            "channel": channel,
            "images": [
                {"index": int(i), "value": float(v)} for i, v in zip(indices[channel], values[channel])
            ],
        }

    def _ensure(self, network: Network, images: np.ndarray, labels: np.ndarray) -> None:
        from cnnlab.training.rundir import CHECKPOINT

        key = fingerprint(self.run_dir / CHECKPOINT, labels)
        if key == self.key:
            return
        if not self._load(key):
            self.tables = {i: _top(r) for i, r in _responses(network, images).items()}
            self._save(key)
        self.key = key

    def _load(self, key: str) -> bool:
        path = self.run_dir / CACHE
        try:
            with np.load(path) as saved:
                if str(saved["key"]) != key:
                    return False
                steps = saved["steps"]
                self.tables = {int(i): (saved[f"indices_{i}"], saved[f"values_{i}"]) for i in steps}
            return True
        except (OSError, KeyError, ValueError):  # absent, unreadable or from another version: compute it
            return False

    def _save(self, key: str) -> None:
        import io

        from cnnlab.errors import RunDirError
        from cnnlab.fileio import write_atomic

        arrays = {"key": np.array(key), "steps": np.array(sorted(self.tables))}
        for i, (indices, values) in self.tables.items():
            arrays[f"indices_{i}"], arrays[f"values_{i}"] = indices, values
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)  # np.load reads without pickle too
        try:
            write_atomic(self.run_dir / CACHE, lambda fh: fh.write(buffer.getvalue()))
        except RunDirError:  # a read-only run directory: the tables live in memory only
            pass


def _top(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) (C, KEEP) of the largest responses of each channel, largest first."""
    order = np.argsort(-responses, axis=0, kind="stable")[:KEEP].T  # (C, KEEP)
    return order.astype(np.int32), np.take_along_axis(responses.T, order, axis=1).astype(np.float32)

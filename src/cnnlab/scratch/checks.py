"""Argument checks shared by the functional ops: each raises ValueError naming the argument."""

from __future__ import annotations

import numpy as np

__all__ = ["float_array", "batched", "positive_int"]


def float_array(x, name: str, dtype=None) -> np.ndarray:
    """``x`` as a floating NumPy array: its own float dtype, else ``dtype``, else float64."""
    x = np.asarray(x)
    if dtype is not None:
        return x.astype(dtype, copy=False)
    if not np.issubdtype(x.dtype, np.floating):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
            raise ValueError(f"{name} must be a real-valued array. Received: {name}.dtype={x.dtype}")
        return x.astype(np.float64)
    return x


def batched(x: np.ndarray, op: str) -> tuple[np.ndarray, bool]:
    """A (C, H, W) or (N, C, H, W) input as (N, C, H, W), and whether it was unbatched."""
    if x.ndim == 3:
        return x[None], True  # (1, C, H, W)
    if x.ndim == 4:
        return x, False
    raise ValueError(
        f"{op} expects a 3-D (unbatched) or 4-D (batched) input. Received: input.shape={x.shape}"
    )


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)

"""Data augmentation on whole batches of NumPy images, drawn from a NumPy Generator.

The same options as the torch backend's augmentation (``cnnlab.training.augment``): a random
translation (pad and crop) and random horizontal flips. Each function splits in two: what is
drawn (``draw_shifts``, ``draw_flips``) and what is done with it (``translate``, ``hflip``), so a
test can feed both backends the same draws, and a Generator seeded from (seed, epoch) makes every
epoch's augmentation reproducible, so a resumed run repeats it.

    translate: y[n, c, i, j] = x[n, c, i + dy_n - s, j + dx_n - s], ``fill`` outside the image,
               with (dy_n, dx_n) drawn uniformly from [0, 2s] (s = max_shift)
    hflip:     y[n, c, i, j] = x[n, c, i, W - 1 - j] where flip_n, else x[n, c, i, j]
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch._checks import float_array

__all__ = ["draw_shifts", "translate", "draw_flips", "hflip", "augment"]


def draw_shifts(n: int, max_shift: int, generator: np.random.Generator) -> np.ndarray:
    """(2, n) offsets into the padded image, rows first: each uniform in [0, 2 * max_shift]."""
    return generator.integers(0, 2 * max_shift + 1, size=(2, n))


def translate(x, offsets, max_shift: int, fill: float = 0.0) -> np.ndarray:
    """Shift each image of x (N, C, H, W): pad by ``max_shift`` with ``fill`` and crop at ``offsets``.

    ``offsets`` (2, N) are the crop's top-left corners in the padded image (from ``draw_shifts``);
    ``max_shift`` rows and columns of offset mean no shift. Returns a new (N, C, H, W) array.
    """
    x = float_array(x, "input")
    n, c, h, w = x.shape
    s = max_shift
    padded = np.full((n, c, h + 2 * s, w + 2 * s), fill, dtype=x.dtype)  # (N, C, H + 2s, W + 2s)
    padded[:, :, s : s + h, s : s + w] = x
    rows = offsets[0][:, None] + np.arange(h)  # (N, H)
    cols = offsets[1][:, None] + np.arange(w)  # (N, W)
    batch = np.arange(n)[:, None, None]  # (N, 1, 1)
    # Advanced indexing picks each image's crop: (N, H, W, C), then back to (N, C, H, W).
    crops = padded.transpose(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2))


def draw_flips(n: int, generator: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """(n,) booleans: which images to mirror, each with probability ``p``."""
    return generator.random(n) < p


def hflip(x, flips) -> np.ndarray:
    """Mirror left-right the images of x (N, C, H, W) where ``flips`` (N,) is True."""
    x = float_array(x, "input")
    return np.where(np.asarray(flips)[:, None, None, None], x[..., ::-1], x)


def augment(x, generator: np.random.Generator, translate_by: int = 0, flip: bool = False, fill: float = 0.0):
    """A random translation of up to ``translate_by`` pixels, then random flips, as the torch
    backend applies them (shifts drawn first, then flips)."""
    if translate_by > 0:
        x = translate(x, draw_shifts(len(x), translate_by, generator), translate_by, fill)
    if flip:
        x = hflip(x, draw_flips(len(x), generator))
    return x

"""Data augmentation on whole batches of NumPy images, drawn from a NumPy Generator.

The same options as the torch backend's augmentation (``cnnlab.training.augment``): a random
translation (pad and crop, zero or reflect padding), random horizontal flips and cutout squares.
Each function splits in two: what is drawn (``draw_shifts``, ``draw_flips``, ``draw_centres``) and
what is done with it (``translate``, ``hflip``, ``cutout``), so a test can feed both backends the
same draws, and a Generator seeded from (seed, epoch) makes every epoch's augmentation
reproducible, so a resumed run repeats it. ``shift`` moves every image by one fixed offset
(test-time augmentation's shifted views).

    pad:       zero:    p[n, c, i, j] = x[n, c, i - s, j - s] inside the image, ``fill`` outside
               reflect: p[n, c, i, j] = x[n, c, r(i - s, H), r(j - s, W)], r(k, L) = |k| for k < 0,
                        2 (L - 1) - k for k >= L (the edge row is not repeated; numpy's "reflect")
    translate: y[n, c, i, j] = p[n, c, i + dy_n, j + dx_n], (dy_n, dx_n) uniform in [0, 2s]
               (s = max_shift; an offset of s is no shift)
    hflip:     y[n, c, i, j] = x[n, c, i, W - 1 - j] where flip_n, else x[n, c, i, j]
    cutout:    y[n, c, i, j] = fill where cy_n - k//2 <= i < cy_n - k//2 + k and likewise for j,
               else x[n, c, i, j]; (cy_n, cx_n) uniform over the image, so the k x k square is
               clipped where it crosses the border (DeVries & Taylor 2017)
    shift:     y[n, c, i, j] = x[n, c, i - dy, j - dx], ``fill`` outside the image
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.checks import float_array

__all__ = [
    "PAD_MODES",
    "pad",
    "draw_shifts",
    "translate",
    "draw_flips",
    "hflip",
    "draw_centres",
    "cutout",
    "shift",
    "augment",
]

PAD_MODES = ("zero", "reflect")


def pad(x, by: int, mode: str = "zero", fill=0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 by, W + 2 by): ``fill`` around the image (zero), one value or one
    per channel, or the image mirrored at its edge without repeating the edge (reflect, numpy's
    ``np.pad(mode="reflect")``)."""
    x = float_array(x, "input")
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {', '.join(PAD_MODES)}. Received: mode={mode!r}")
    width = ((0, 0), (0, 0), (by, by), (by, by))
    if mode == "reflect":
        return np.pad(x, width, mode="reflect")
    values = np.atleast_1d(np.asarray(fill, dtype=x.dtype))
    if values.size == 1:
        return np.pad(x, width, mode="constant", constant_values=values[0])
    n, c, h, w = x.shape
    if values.size != c:
        raise ValueError(f"fill must be one value or one per channel ({c}). Received: {values.size} values")
    out = np.empty((n, c, h + 2 * by, w + 2 * by), x.dtype)
    out[...] = values[None, :, None, None]
    out[..., by : by + h, by : by + w] = x
    return out


def draw_shifts(n: int, max_shift: int, generator: np.random.Generator) -> np.ndarray:
    """(2, n) offsets into the padded image, rows first: each uniform in [0, 2 * max_shift]."""
    return generator.integers(0, 2 * max_shift + 1, size=(2, n))


def translate(x, offsets, max_shift: int, fill=0.0, mode: str = "zero") -> np.ndarray:
    """Shift each image of x (N, C, H, W): pad by ``max_shift`` (``pad``) and crop at ``offsets``.

    ``offsets`` (2, N) are the crop's top-left corners in the padded image (from ``draw_shifts``);
    ``max_shift`` rows and columns of offset mean no shift. Returns a new (N, C, H, W) array.
    """
    x = float_array(x, "input")
    n, c, h, w = x.shape
    padded = pad(x, max_shift, mode, fill)  # (N, C, H + 2s, W + 2s)
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


def draw_centres(n: int, height: int, width: int, generator: np.random.Generator) -> np.ndarray:
    """(2, n) centres of the cutout squares, rows first: row uniform in [0, height), column in [0, width).

    NOTE: the torch backend draws both in [0, height); the images are square, so the draws agree.
    """
    return generator.integers(0, [[height], [width]], size=(2, n))


def cutout(x, centres, size: int, fill: float = 0.0) -> np.ndarray:
    """Set a ``size`` x ``size`` square of each image of x (N, C, H, W) to ``fill``: the square of
    image n starts ``size // 2`` rows and columns before ``centres[:, n]`` and is clipped at the
    border. Returns a new array."""
    x = float_array(x, "input")
    _, _, h, w = x.shape
    top = np.asarray(centres[0])[:, None] - size // 2  # (N, 1), may be negative: clipped
    left = np.asarray(centres[1])[:, None] - size // 2
    rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]  # (1, H), (1, W)
    inside_rows = (rows >= top) & (rows < top + size)  # (N, H)
    inside_cols = (cols >= left) & (cols < left + size)  # (N, W)
    square = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # (N, 1, H, W)
    return np.where(square, x.dtype.type(fill), x)


def shift(x, dy: int, dx: int, fill=0.0) -> np.ndarray:
    """Every image of x (N, C, H, W) moved down ``dy`` and right ``dx`` pixels (negative: up, left),
    ``fill`` coming in at the border: the numpy twin of ``cnnlab.models.shift_images``."""
    x = float_array(x, "input")
    if dy == dx == 0:
        return x
    h, w = x.shape[-2:]
    s = max(abs(dy), abs(dx))
    return pad(x, s, "zero", fill)[..., s - dy : s - dy + h, s - dx : s - dx + w]


def augment(
    x,
    generator: np.random.Generator,
    translate_by: int = 0,
    flip: bool = False,
    fill=0.0,
    pad_mode: str = "zero",
    cutout_size: int = 0,
):
    """A random translation of up to ``translate_by`` pixels (``pad_mode`` at the border, ``fill``
    for zero padding), then random flips, then cutout squares of ``cutout_size`` filled with 0, as
    the torch backend applies them, in its draw order: shifts, flips, centres."""
    if translate_by > 0:
        offsets = draw_shifts(len(x), translate_by, generator)
        x = translate(x, offsets, translate_by, fill, pad_mode)
    if flip:
        x = hflip(x, draw_flips(len(x), generator))
    if cutout_size > 0:
        h, w = x.shape[-2:]
        x = cutout(x, draw_centres(len(x), h, w, generator), cutout_size)
    return x

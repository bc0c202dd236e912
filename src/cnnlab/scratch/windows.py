"""Strided windows over images, shared by convolution and pooling.

Layout. The API speaks NCHW, as torch does, but conv and pool work on a (C, H, W, N) copy:
batch innermost, so every window offset below is a slice of the H and W axes whose rows are
long contiguous runs of W_out * N values (NCHW would give runs of W_out, about 11 values,
and NumPy's per-row overhead would dominate). Their outputs go back as NCHW-shaped views of
(C, H, W, N) memory, so ``to_planes`` on the next layer's input is free.

A window of a 2-D op with kernel (kh, kw), stride (sh, sw) and dilation (dh, dw) at output
position (oh, ow) reads the padded input at rows ``oh*sh + i*dh`` and columns ``ow*sw + j*dw``:

- ``offset_view(xp, i, j, ...)``: for one kernel offset (i, j), the (C, H_out, W_out, N)
  slice that every window reads there. Pooling and col2im loop over the kh*kw offsets, each
  step one whole-array operation.
- ``windows(xp, ...)``: all offsets at once, a zero-copy (C, kh, kw, H_out, W_out, N) view via
  ``as_strided``; one ``ascontiguousarray`` of it is im2col.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_planes", "from_planes", "pad2d", "unpad2d", "offset_view", "windows", "fold"]


def to_planes(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> contiguous (C, H, W, N); free when x came from ``from_planes``."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))  # (C, H, W, N)


def from_planes(planes: np.ndarray) -> np.ndarray:
    """(C, H, W, N) -> an (N, C, H, W) view, no copy."""
    return planes.transpose(3, 0, 1, 2)  # (N, C, H, W)


def pad2d(planes: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0, out=None) -> np.ndarray:
    """Pad the H and W axes of (C, H, W, N) by ``(top, bottom, left, right)`` with ``value``, into
    ``out`` (C, Hp, Wp, N) when given (only its border is filled, then the interior copied)."""
    top, bottom, left, right = pads
    if not any(pads):
        return planes
    c, h, w, n = planes.shape
    if out is None:
        out = np.empty((c, h + top + bottom, w + left + right, n), dtype=planes.dtype)
    out[:, :top] = value
    out[:, top + h :] = value
    out[:, top : top + h, :left] = value
    out[:, top : top + h, left + w :] = value
    out[:, top : top + h, left : left + w] = planes
    return out


def unpad2d(padded: np.ndarray, pads: tuple[int, int, int, int], hw) -> np.ndarray:
    """The inverse of ``pad2d``: the (C, H, W, N) interior of a padded array."""
    top, _, left, _ = pads
    return padded[:, top : top + hw[0], left : left + hw[1]]


def offset_view(planes: np.ndarray, i: int, j: int, out_hw, stride, dilation) -> np.ndarray:
    """The (C, H_out, W_out, N) view of (C, Hp, Wp, N) ``planes`` that kernel offset (i, j) reads."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return planes[:, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]


def windows(planes: np.ndarray, kernel_size, out_hw, stride, dilation) -> np.ndarray:
    """A read-only (C, kh, kw, H_out, W_out, N) view of every window of (C, Hp, Wp, N) ``planes``."""
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel_size, out_hw, stride, dilation
    sc, sy, sx, sn = planes.strides
    return np.lib.stride_tricks.as_strided(
        planes,
        shape=(planes.shape[0], kh, kw, ho, wo, planes.shape[3]),
        strides=(sc, sy * dh, sx * dw, sy * sh, sx * sw, sn),
        writeable=False,
    )


def fold(cols: np.ndarray, padded_hw, stride, dilation) -> np.ndarray:
    """col2im, the adjoint of ``windows``: add (C, kh, kw, H_out, W_out, N) window values back
    into a zero (C, Hp, Wp, N) array at the positions they were read from."""
    c, kh, kw, ho, wo, n = cols.shape
    out = np.zeros((c, *padded_hw, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            offset_view(out, i, j, (ho, wo), stride, dilation)[...] += cols[:, i, j]
    return out

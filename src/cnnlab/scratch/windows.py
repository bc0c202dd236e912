"""Strided windows over NCHW arrays, shared by convolution and pooling.

A window of a 2-D op with kernel (kh, kw), stride (sh, sw) and dilation (dh, dw) at output
position (oh, ow) reads the padded input at rows ``oh*sh + i*dh`` and columns ``ow*sw + j*dw``.
Two views of the same idea:

- ``offset_view(xp, i, j, ...)``: for one kernel offset (i, j), the (N, C, H_out, W_out)
  slice every window reads there. Pooling and col2im loop over the kh*kw offsets, each step
  a whole-array operation.
- ``windows(xp, ...)``: all offsets at once, a zero-copy (N, C, kh, kw, H_out, W_out) view
  via ``as_strided``; one ``ascontiguousarray`` of it is im2col.

No Python loop here runs over pixels or the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad2d", "offset_view", "windows", "fold", "unpad2d"]


def pad2d(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of ``x`` by ``(top, bottom, left, right)`` with ``value``."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def unpad2d(xp: np.ndarray, pads: tuple[int, int, int, int], hw: tuple[int, int]) -> np.ndarray:
    """The inverse of ``pad2d``: the (N, C, H, W) interior of a padded array."""
    top, _, left, _ = pads
    return xp[:, :, top:top + hw[0], left:left + hw[1]]


def offset_view(xp: np.ndarray, i: int, j: int, out_hw, stride, dilation) -> np.ndarray:
    """The (N, C, H_out, W_out) view of ``xp`` that kernel offset (i, j) reads."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]


def windows(xp: np.ndarray, kernel_size, out_hw, stride, dilation) -> np.ndarray:
    """A read-only (N, C, kh, kw, H_out, W_out) view of every window of ``xp``."""
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel_size, out_hw, stride, dilation
    sn, sc, sy, sx = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(xp.shape[0], xp.shape[1], kh, kw, ho, wo),
        strides=(sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)


def fold(cols: np.ndarray, padded_hw, stride, dilation) -> np.ndarray:
    """col2im, the adjoint of ``windows``: sum (N, C, kh, kw, H_out, W_out) window values back
    into a zero (N, C, Hp, Wp) array at the positions they were read from."""
    n, c, kh, kw, ho, wo = cols.shape
    out = np.zeros((n, c) + tuple(padded_hw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            offset_view(out, i, j, (ho, wo), stride, dilation)[...] += cols[:, :, i, j]
    return out

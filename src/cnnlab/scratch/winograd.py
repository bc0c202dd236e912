"""Winograd F(2x2, 3x3): a 3x3 convolution (stride 1, dilation 1, one group) with 2.25x fewer
multiplications than im2col, forward and backward, in the (C, H, W, N) layout of windows.py.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2015). Cut the padded input into
4x4 tiles d at stride 2 (tile (ty, tx) starts at row 2ty, column 2tx); each gives a 2x2 block of
the output. For a filter g (3x3) and a tile d (4x4), with

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

the 2x2 output block is  Y = A^T [(G g G^T) * (B^T d B)] A  (* elementwise). Summed over input
channels c, the elementwise product becomes 16 GEMMs, one per position xi of the 4x4 transform:

    U[xi] = (G w[k, c] G^T)[xi]    (K, C)      the transformed weight
    V[xi] = (B^T d[c, tile] B)[xi] (C, P)      the transformed input; P = tiles * N, batch innermost
    M[xi] = U[xi] @ V[xi]          (K, P)      y[k, tile] = A^T M[:, :, k, tile] A

A 3x3 window costs 9 multiplications per output in im2col and 16/4 = 4 here. Output sizes that
are odd get one more row or column of tiles over zero padding, cropped from the result.

The backward is the adjoint of each step, in reverse (every transform is linear):

    dM[xi] = (A dY_tile A^T)[xi]                       (K, P)   dY_tile the 2x2 gradient block
    dL/dw[k, c] = G^T dU[k, c] G,   dU[xi] = dM[xi] @ V[xi]^T    (K, C)
    dV[xi] = U[xi]^T @ dM[xi],      dL/dd = B dV B^T    (C, P), each tile's 4x4 gradient added back
                                                        where the tile was read (tiles overlap by 2)

so the output gradient is transformed once for both GEMMs, as im2col's backward shares dL/dy.

Each 4x4 transform is separable (rows, then columns), and each pass is a few whole-array adds of
strided views: the matrices hold only 0 and +-1 (G's halves act on the small weight alone). The
work goes in chunks of tile rows, whose V and M stay in cache from transform to GEMM; the forward
keeps the padded input (V is 4x as large) and the backward recomputes each chunk's V.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

import numpy as np

from cnnlab.scratch.module import Workspace, reused_array
from cnnlab.scratch.windows import from_planes, to_planes

__all__ = ["applies", "save_input", "forward", "backward", "Saved", "BT", "G", "AT"]

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])  # (4, 4) input transform
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])  # (4, 3) weight transform
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])  # (2, 4) output transform

# Input channels from which Winograd beats im2col: with fewer, the 16 GEMMs have too short a
# reduction for the BLAS to run fast.
MIN_CHANNELS = 16
# Columns (tiles * N) of V and M per chunk. The transformed arrays are 4x the input and output, and
# a pass over them costs about as much as a GEMM on them when they come from memory: in chunks of
# whole tile rows, each chunk's V and M stay in cache between the transform and the GEMM.
CHUNK_COLUMNS = 1024


class Saved(NamedTuple):
    """What the backward needs from the forward: the padded input (its tiles' transform V is
    recomputed chunk by chunk rather than kept, 4x as large) and the tiling."""

    xp: np.ndarray  # (C, 2th + 2, 2, tw + 1, N) the zero-padded input, columns split by parity
    x_shape: tuple  # (N, C, H, W)
    pads: tuple  # (top, bottom, left, right) of the convolution itself
    tiles: tuple  # (th, tw) tile rows and columns
    out_hw: tuple  # (H_out, W_out)
    workspace: Workspace  # the forward's scratch arrays


def applies(weight_shape, geo) -> bool:
    """Whether conv2d takes the Winograd path: a 3x3 kernel, stride 1, dilation 1, one group, and
    enough input channels for it to be faster than im2col."""
    return (
        tuple(weight_shape[2:]) == (3, 3)
        and geo["stride"] == (1, 1)
        and geo["dilation"] == (1, 1)
        and geo["groups"] == 1
        and weight_shape[1] >= MIN_CHANNELS
    )


def _local_workspace() -> Workspace:
    """A workspace(name, shape, dtype) of this call's own, so that chunks reuse their buffers."""
    return functools.partial(reused_array, {})


def _combine(matrix, sources, outs) -> None:
    """``outs[i] = sum_j matrix[i, j] * sources[j]`` for a matrix of 0 and +-1, in one or two
    ufunc passes per output (no temporaries)."""
    for row, out in zip(matrix, outs):
        terms = [(c, s) for c, s in zip(row, sources) if c]
        (c0, s0), rest = terms[0], terms[1:]
        if not rest:
            (np.copyto(out, s0) if c0 == 1 else np.negative(s0, out=out))
            continue
        (c1, s1), rest = rest[0], rest[1:]
        if c0 == 1:
            (np.add if c1 == 1 else np.subtract)(s0, s1, out=out)
        elif c1 == 1:
            np.subtract(s1, s0, out=out)
        else:
            np.add(s0, s1, out=out)
            np.negative(out, out=out)
        for c, s in rest:
            (np.add if c == 1 else np.subtract)(out, s, out=out)


def _scatter(matrix, sources, outs) -> None:
    """The adjoint of ``_combine``: ``outs[j] += sum_i matrix[i, j] * sources[i]``, in place
    (``outs`` may be overlapping views of one array: each pass adds into one of them)."""
    for j, out in enumerate(outs):
        for i, s in enumerate(sources):
            if matrix[i, j]:
                (np.add if matrix[i, j] == 1 else np.subtract)(out, s, out=out)


def _phases(planes, axis: int, count: int, taps: int):
    """The ``taps`` views of ``planes`` along ``axis`` (1: rows, 2: columns) that tile offsets
    0..taps-1 read: offset r gives positions r, r+2, ..., r+2(count-1)."""
    index = [slice(None)] * planes.ndim
    views = []
    for r in range(taps):
        index[axis] = slice(r, r + 2 * count - 1, 2)
        views.append(planes[tuple(index)])
    return views


def transform_weight(w: np.ndarray) -> np.ndarray:
    """U (16, K, C): G w[k, c] G^T for every filter, the 4x4 positions first."""
    g = G.astype(w.dtype)
    u = (g @ w @ g.T).transpose(2, 3, 0, 1)  # (4, 4, K, C)
    return np.ascontiguousarray(u).reshape(16, w.shape[0], w.shape[1])


@contextmanager
def _unbuffered():
    """NumPy buffers a ufunc's operands whose contiguous runs are shorter than its buffer (8192
    elements), copying them twice as slowly as the loop itself; runs here are tw*N long."""
    size = np.getbufsize()
    np.setbufsize(256)
    try:
        yield
    finally:
        np.setbufsize(size)


def _tiling(x_shape, pads) -> tuple[tuple, tuple, tuple]:
    """(tiles, out_hw, pads with the extra bottom/right zero row or column of odd output sizes)."""
    top, bottom, left, right = pads
    ho, wo = x_shape[2] + top + bottom - 2, x_shape[3] + left + right - 2
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    return (th, tw), (ho, wo), (top, bottom + 2 * th - ho, left, right + 2 * tw - wo)


def _column_phases(width: int, left: int, wq: int):
    """For padded column phase q (columns 2u + q), (q, first u, last u + 1, first source column)
    of the columns that hold the input (the others are padding)."""
    for q in range(2):
        lo, hi = (left - q + 1) // 2, min(wq, (left + width - q + 1) // 2)
        yield q, lo, hi, 2 * lo + q - left


def _split_columns(planes, pads, xp) -> None:
    """xp (C, Hp, 2, Wq, N) = the zero-padded (C, H, W, N) planes, even and odd columns apart:
    xp[:, h, q, u] is padded column 2u + q. Each tile's column offsets then read runs of tw * N."""
    top, _, left, _ = pads
    h, width = planes.shape[1:3]
    xp[:, :top] = 0
    xp[:, top + h :] = 0
    for q, lo, hi, first in _column_phases(width, left, xp.shape[3]):
        inner = xp[:, top : top + h, q]
        inner[:, :, :lo] = 0
        inner[:, :, hi:] = 0
        np.copyto(inner[:, :, lo:hi], planes[:, :, first::2][:, :, : hi - lo])


def _chunks(saved: Saved):
    """(first tile row, tile rows) of each chunk of about CHUNK_COLUMNS columns."""
    th, tw = saved.tiles
    step = max(1, CHUNK_COLUMNS // (tw * saved.x_shape[0]))
    return [(t0, min(step, th - t0)) for t0 in range(0, th, step)]


_BLAS = None  # threadpoolctl's controller of NumPy's BLAS, made on first use
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0  # its worker count


def _blas():
    """(BLAS threads, context that runs it on one thread) via threadpoolctl (scikit-learn's
    dependency); (1, no-op) without it."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController().select(user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _BLAS = False
    if not _BLAS or not _BLAS.lib_controllers:
        return 1, nullcontext()
    return _BLAS.lib_controllers[0].get_num_threads(), _BLAS.limit(limits=1)


def _slot(workspace: Workspace, slot: int) -> Workspace:
    """The workspace of one Python thread: the same names, suffixed, so threads never share."""
    return lambda name, shape, dtype: workspace(f"{name}.{slot}", shape, dtype)


def _run_chunks(saved: Saved, work, disjoint_outputs: bool = True) -> list:
    """``work(saved, t0, nt)`` for every chunk; returns their results.

    With the BLAS on T > 1 threads, the chunks go to T Python threads instead, each with its own
    scratch arrays and a one-thread BLAS: NumPy releases the GIL in its loops and GEMMs, so the
    transforms run in parallel too, and the GEMMs, small here, skip OpenBLAS's per-call barrier,
    which stalls when another process holds a core. ``disjoint_outputs=False``: chunks write
    overlapping rows (the input gradient's tiles overlap by two rows), so every other chunk goes
    in a first wave and the rest in a second; chunks two apart share no row.
    """
    global _POOL, _POOL_SIZE
    chunks = _chunks(saved)
    threads, one_blas_thread = _blas()
    if threads <= 1 or len(chunks) < 2:
        return [work(saved, t0, nt) for t0, nt in chunks]
    if _POOL is None or _POOL_SIZE < threads:
        _POOL, _POOL_SIZE = ThreadPoolExecutor(threads, thread_name_prefix="winograd"), threads

    def run(slot, part):
        with _unbuffered():  # NumPy's buffer size is per thread
            own = saved._replace(workspace=_slot(saved.workspace, slot))
            return [work(own, t0, nt) for t0, nt in part]

    results = []
    with one_blas_thread:
        for wave in [chunks] if disjoint_outputs else [chunks[0::2], chunks[1::2]]:
            parts = [wave[i::threads] for i in range(threads)]
            futures = [_POOL.submit(run, i, part) for i, part in enumerate(parts) if part]
            results += [r for f in futures for r in f.result()]
    return results


def _column_taps(rows: np.ndarray, tw: int):
    """The four (C, nt, tw, N) views of column-split rows (C, nt, 2, Wq, N) at tile column
    offsets s = 0..3: columns 2tx + s are phase s % 2, position tx + s // 2."""
    return [rows[:, :, s % 2, s // 2 : s // 2 + tw] for s in range(4)]


def _transform_tiles(saved: Saved, t0: int, nt: int) -> np.ndarray:
    """V (16, C, nt * tw * N) = B^T d B for the 4x4 tiles d of tile rows t0..t0+nt-1: down the
    rows, then across the columns."""
    xp, tw, ws = saved.xp, saved.tiles[1], saved.workspace
    c, wq, n = xp.shape[0], xp.shape[3], xp.shape[4]
    rows = ws("rows", (4, c, nt, 2, wq, n), xp.dtype)
    _combine(BT, _phases(xp[:, 2 * t0 : 2 * t0 + 2 * nt + 2], 1, nt, 4), rows)
    v = ws("v", (4, 4, c, nt, tw, n), xp.dtype)
    for a in range(4):
        _combine(BT, _column_taps(rows[a], tw), v[a])
    return v.reshape(16, c, nt * tw * n)


def _untile(m: np.ndarray, y: np.ndarray, saved: Saved, t0: int, nt: int) -> None:
    """y's 2x2 blocks of tile rows t0..t0+nt-1 = A^T m A, m (16, K, nt * tw * N); the extra row
    or column of tiles of an odd size is cropped."""
    (k, _, _, n), tw, ws = y.shape, saved.tiles[1], saved.workspace
    m = m.reshape(4, 4, k, nt, tw, n)
    half = ws("half", (2, 4, k, nt, tw, n), y.dtype)  # A^T down the rows of each tile
    for b in range(4):
        _combine(AT, list(m[:, b]), list(half[:, b]))
    block = ws("block", (2, 2, k, nt, tw, n), y.dtype)  # then across: the 2x2 output blocks
    for i in range(2):
        _combine(AT, list(half[i]), list(block[i]))
    for i in range(2):
        for j in range(2):  # y[:, i::2, j::2]: short runs of N, which copyto moves fast
            out = y[:, i::2, j::2][:, t0 : t0 + nt]
            np.copyto(out, block[i, j][:, : out.shape[1], : out.shape[2]])


def save_input(x: np.ndarray, pads, workspace=None) -> Saved:
    """The (N, C, H, W) input x zero-padded by (top, bottom, left, right) and column-split, with
    its tiling: what forward and backward start from."""
    workspace = workspace or _local_workspace()
    tiles, out_hw, tile_pads = _tiling(x.shape, pads)
    (th, tw), (n, c) = tiles, x.shape[:2]
    xp = workspace("padded", (c, 2 * th + 2, 2, tw + 1, n), x.dtype)
    with _unbuffered():
        _split_columns(to_planes(x), tile_pads, xp)
    return Saved(xp, x.shape, tuple(pads), tiles, out_hw, workspace)


def forward(x: np.ndarray, w: np.ndarray, pads, workspace=None) -> tuple[np.ndarray, Saved]:
    """(y (K, H_out, W_out, N), Saved) for the 3x3 convolution of (N, C, H, W) x with (K, C, 3, 3)
    w and (top, bottom, left, right) zero padding; ``workspace(name, shape, dtype)`` supplies the
    scratch arrays when given (see Module.workspace)."""
    saved = save_input(x, pads, workspace)
    workspace, k, n = saved.workspace, w.shape[0], x.shape[0]
    u = transform_weight(w)
    y = np.empty((k, *saved.out_hw, n), x.dtype)  # returned to the next layer: a fresh array

    def work(saved, t0, nt):
        v = _transform_tiles(saved, t0, nt)
        m = saved.workspace("m", (16, k, v.shape[2]), x.dtype)
        np.matmul(u, v, out=m)  # 16 GEMMs (K, C) @ (C, P)
        _untile(m, y, saved, t0, nt)

    with _unbuffered():
        _run_chunks(saved, work)
    return y, saved


def _split_grad(grad_output, saved: Saved, dtype) -> np.ndarray:
    """gq (K, th, 2, 2, tw, N): the output gradient's 2x2 blocks, gq[:, ty, i, j, tx] =
    dL/dy[:, 2ty + i, 2tx + j], zero beyond an odd size (those outputs were cropped)."""
    (th, tw), n = saved.tiles, saved.x_shape[0]
    gy = to_planes(np.asarray(grad_output, dtype=dtype))  # (K, H_out, W_out, N)
    gq = saved.workspace("gq", (gy.shape[0], th, 2, 2, tw, n), dtype)
    for i in range(2):
        for j in range(2):
            part = gy[:, i::2, j::2]
            rows, cols = part.shape[1:3]
            np.copyto(gq[:, :rows, i, j, :cols], part)
            gq[:, rows:, i, j] = 0
            gq[:, :rows, i, j, cols:] = 0
    return gq


def _transform_grad(gq: np.ndarray, saved: Saved, t0: int, nt: int) -> np.ndarray:
    """dM (16, K, nt * tw * N) = A dY A^T for the 2x2 blocks dY of tile rows t0..t0+nt-1:
    across the columns, then down the rows."""
    k, tw, n, ws = gq.shape[0], gq.shape[4], gq.shape[5], saved.workspace
    half = ws("half", (2, 4, k, nt, tw, n), gq.dtype)
    for i in range(2):
        _combine(AT.T, [gq[:, t0 : t0 + nt, i, j] for j in range(2)], list(half[i]))
    dm = ws("m", (4, 4, k, nt, tw, n), gq.dtype)
    for b in range(4):
        _combine(AT.T, list(half[:, b]), list(dm[:, b]))
    return dm.reshape(16, k, nt * tw * n)


def _untransform_tiles(dv: np.ndarray, grad_xp: np.ndarray, saved: Saved, t0: int, nt: int) -> None:
    """Add B dV B^T, each 4x4 tile's gradient, back where tile rows t0..t0+nt-1 were read from
    (adjacent tiles overlap by two rows and two columns): across the columns, then down the rows."""
    c, wq, n, tw = grad_xp.shape[0], grad_xp.shape[3], grad_xp.shape[4], saved.tiles[1]
    dv = dv.reshape(4, 4, c, nt, tw, n)
    rows = saved.workspace("rows", (4, c, nt, 2, wq, n), grad_xp.dtype)
    rows[...] = 0
    for a in range(4):
        _scatter(BT, list(dv[a]), _column_taps(rows[a], tw))
    _scatter(BT, list(rows), _phases(grad_xp[:, 2 * t0 : 2 * t0 + 2 * nt + 2], 1, nt, 4))


def backward(grad_output: np.ndarray, saved: Saved, w: np.ndarray, input_grad: bool = True):
    """(grad_input (N, C, H, W) view or None, grad_weight (K, C, 3, 3)) from the (N, K, H_out,
    W_out) output gradient and the forward's ``Saved``. NOTE: reuses the forward's scratch arrays
    (one backward per forward, as im2col's cols)."""
    (n, c, h, wd), k, dtype = saved.x_shape, w.shape[0], w.dtype
    u_t = transform_weight(w).transpose(0, 2, 1)  # (16, C, K)
    grad_xp = np.zeros_like(saved.xp) if input_grad else None

    def work(saved, t0, nt):
        dm = _transform_grad(gq, saved, t0, nt)
        v = _transform_tiles(saved, t0, nt)
        # dU^T = V dM^T: OpenBLAS runs this order of the long-reduction GEMM faster (conv.py)
        du_t = np.matmul(v, dm.transpose(0, 2, 1))
        if grad_xp is not None:
            np.matmul(u_t, dm, out=v)  # dV = U^T dM, into V's memory
            _untransform_tiles(v, grad_xp, saved, t0, nt)
        return du_t

    with _unbuffered():
        gq = _split_grad(grad_output, saved, dtype)
        du_t = sum(_run_chunks(saved, work, disjoint_outputs=False))  # dU^T, summed over the chunks
        if grad_xp is not None:
            grad_input = np.empty((c, h, wd, n), dtype)  # (C, H, W, N), the columns joined again
            top, left = saved.pads[0], saved.pads[2]
            for q, lo, hi, first in _column_phases(wd, left, grad_xp.shape[3]):
                np.copyto(grad_input[:, :, first::2][:, :, : hi - lo], grad_xp[:, top : top + h, q, lo:hi])
    g = G.astype(dtype)
    grad_w = np.ascontiguousarray(g.T @ du_t.reshape(4, 4, c, k).transpose(3, 2, 0, 1) @ g)  # G^T dU G
    return (from_planes(grad_input) if grad_xp is not None else None), grad_w

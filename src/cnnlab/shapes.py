"""Output-size arithmetic for 2-D convolution and pooling: the one place these formulas live.

Pure standard library. The scratch engine, the model summary and the tests all call these
functions, so a configuration that cannot work fails here, early, with a message that names
the argument and echoes the value. The rules and the refusals follow PyTorch
(``aten/src/ATen/native/Pool.h`` and ``ConvUtils.h``).

For one spatial dimension, with input size H, kernel k, stride s, padding p, dilation d:

    convolution:            H_out = floor((H + 2p - d(k - 1) - 1) / s) + 1
    pooling (ceil_mode):    H_out = ceil((H + 2p - d(k - 1) - 1) / s) + 1, minus one if the
                            last window would start beyond the input and its left padding,
                            i.e. if (H_out - 1) s >= H + p
    transposed convolution: H_out = (H - 1) s - 2p + d(k - 1) + output_padding + 1

The notebook's "difficult question": 8 feature maps of a 4x4 kernel over 28x28 give
8 * 25 * 25 = 5000 values, since floor((28 - 3 - 1) / 1) + 1 = 25.
"""

from __future__ import annotations

import math
import operator

__all__ = [
    "conv2d_output_shape",
    "pool2d_output_shape",
    "conv_transpose2d_output_shape",
    "conv2d_padding",
    "pair",
    "default_stride",
]


def pair(value, name: str) -> tuple[int, int]:
    """``value`` as a pair of ints: an int ``v`` or a one-element ``(v,)`` becomes ``(v, v)``, as torch's
    conv and pooling arguments accept them; a pair is checked."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    items = items * 2 if len(items) == 1 else items
    try:
        if len(items) != 2 or any(isinstance(v, bool) for v in items):
            raise TypeError
        first, second = (operator.index(v) for v in items)
    except TypeError:
        raise ValueError(f"{name} must be an int or a pair of ints. Received: {name}={value!r}") from None
    return (first, second)


def _positive(value, name: str) -> tuple[int, int]:
    values = pair(value, name)
    if min(values) < 1:
        raise ValueError(f"{name} must be positive. Received: {name}={value!r}")
    return values


def conv2d_padding(padding, kernel_size, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """Resolve a conv2d ``padding`` to ``(top, bottom, left, right)``.

    'valid' is no padding. 'same' pads ``d (k - 1)`` in total per dimension, ``total // 2``
    before and the rest after (so an even kernel pads one more at the bottom/right, as torch
    does); torch refuses 'same' for strided convolutions, and so does this.
    """
    kh, kw = _positive(kernel_size, "kernel_size")
    sh, sw = _positive(stride, "stride")
    dh, dw = _positive(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions. "
                    f"Received: padding='same', stride={stride!r}"
                )
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(
            f"padding must be 'valid', 'same', an int or a pair of ints. Received: padding={padding!r}"
        )
    ph, pw = pair(padding, "padding")
    if min(ph, pw) < 0:
        raise ValueError(f"padding must be non-negative. Received: padding={padding!r}")
    return (ph, ph, pw, pw)


def default_stride(stride) -> bool:
    """Whether a pooling ``stride`` means "the kernel size": None or an empty tuple or list, as in torch."""
    return stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)


def _input_hw(input_hw) -> tuple[int, int]:
    if not (isinstance(input_hw, (tuple, list)) and len(input_hw) == 2):
        raise ValueError(f"input_hw must be a pair (H, W). Received: input_hw={input_hw!r}")
    h, w = pair(tuple(input_hw), "input_hw")
    if min(h, w) < 1:
        raise ValueError(f"input_hw must be positive. Received: input_hw={input_hw!r}")
    return h, w


def conv2d_output_shape(input_hw, kernel_size, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    """``(H_out, W_out)`` of a 2-D convolution (or cross-correlation) over ``input_hw``.

    ``H_out = floor((H + p_top + p_bottom - d (k - 1) - 1) / s) + 1``. Raises ValueError,
    naming the argument, for anything torch refuses, including a kernel larger than the
    padded input.
    """
    hw = _input_hw(input_hw)
    k = _positive(kernel_size, "kernel_size")
    s = _positive(stride, "stride")
    d = _positive(dilation, "dilation")
    top, bottom, left, right = conv2d_padding(padding, kernel_size, stride, dilation)
    out = []
    for size, pad, kk, ss, dd in zip(hw, (top + bottom, left + right), k, s, d):
        span = dd * (kk - 1) + 1  # the dilated kernel's extent
        if size + pad < span:
            raise ValueError(
                f"kernel_size (dilated to {span}) is larger than the padded input ({size + pad}). "
                f"Received: input_hw={input_hw!r}, kernel_size={kernel_size!r}, "
                f"padding={padding!r}, dilation={dilation!r}"
            )
        out.append((size + pad - span) // ss + 1)
    return (out[0], out[1])


def pool2d_output_shape(
    input_hw, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
) -> tuple[int, int]:
    """``(H_out, W_out)`` of max or average pooling; ``stride=None`` means ``kernel_size``.

    Floor mode as convolution. In ceil mode the division rounds up, but the last window must
    start inside the input or its left padding, as in torch. Like torch, padding may be at
    most half the kernel size. NOTE: torch's pooling takes no 'same'/'valid' strings; nor
    does this.
    """
    hw = _input_hw(input_hw)
    k = _positive(kernel_size, "kernel_size")
    s = k if default_stride(stride) else _positive(stride, "stride")
    d = _positive(dilation, "dilation")
    if isinstance(padding, str):
        raise ValueError(f"pooling padding must be an int or a pair of ints. Received: padding={padding!r}")
    p = pair(padding, "padding")
    if min(p) < 0:
        raise ValueError(f"padding must be non-negative. Received: padding={padding!r}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"padding should be at most half of kernel_size. "
            f"Received: padding={padding!r}, kernel_size={kernel_size!r}"
        )
    out = []
    for size, pp, kk, ss, dd in zip(hw, p, k, s, d):
        span = dd * (kk - 1) + 1
        numerator = size + 2 * pp - span
        n = (math.ceil(numerator / ss) if ceil_mode else numerator // ss) + 1
        if ceil_mode and (n - 1) * ss >= size + pp:
            n -= 1
        if n < 1:
            raise ValueError(
                f"output size is too small ({n}). Received: input_hw={input_hw!r}, "
                f"kernel_size={kernel_size!r}, padding={padding!r}, dilation={dilation!r}"
            )
        out.append(n)
    return (out[0], out[1])


def conv_transpose2d_output_shape(
    input_hw, kernel_size, stride=1, padding=0, output_padding=0, dilation=1
) -> tuple[int, int]:
    """``(H_out, W_out)`` of a transposed convolution.

    ``H_out = (H - 1) s - 2p + d (k - 1) + output_padding + 1``. As torch requires,
    ``output_padding`` must be smaller than the stride or the dilation.
    """
    hw = _input_hw(input_hw)
    k = _positive(kernel_size, "kernel_size")
    s = _positive(stride, "stride")
    d = _positive(dilation, "dilation")
    if isinstance(padding, str):
        raise ValueError(
            f"conv_transpose2d padding must be an int or a pair of ints. Received: padding={padding!r}"
        )
    p = pair(padding, "padding")
    op = pair(output_padding, "output_padding")
    if min(p) < 0:
        raise ValueError(f"padding must be non-negative. Received: padding={padding!r}")
    if min(op) < 0 or any(o >= ss and o >= dd for o, ss, dd in zip(op, s, d)):
        raise ValueError(
            f"output_padding must be non-negative and smaller than either stride or "
            f"dilation. Received: output_padding={output_padding!r}, "
            f"stride={stride!r}, dilation={dilation!r}"
        )
    out = [
        (size - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
        for size, kk, ss, pp, oo, dd in zip(hw, k, s, p, op, d)
    ]
    if min(out) < 1:
        raise ValueError(
            f"output size is too small ({out[0]}, {out[1]}). "
            f"Received: input_hw={input_hw!r}, padding={padding!r}"
        )
    return (out[0], out[1])

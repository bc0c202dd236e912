"""conv2d and conv2d_backward against torch (float64), the loop reference, and central differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_conv2d

from cnnlab.scratch import functional as F
from cnnlab.scratch.gradcheck import gradcheck

ints_or_pairs = lambda lo, hi: st.one_of(
    st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi))
)
as_pair = lambda v: v if isinstance(v, tuple) else (v, v)


@st.composite
def conv_configs(draw, max_hw=9):
    """A random valid conv2d configuration and float64 arrays for it."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride, dilation = draw(ints_or_pairs(1, 3)), draw(ints_or_pairs(1, 2))
    choices = [ints_or_pairs(0, 2), st.just("valid")] + (
        [st.just("same")] if as_pair(stride) == (1, 1) else []
    )
    padding = draw(st.one_of(*choices))
    pad = (0, 0) if padding == "valid" else as_pair(padding) if padding != "same" else None
    hw = []
    for axis in (0, 1):  # the smallest size the kernel fits, and a few more
        span = as_pair(dilation)[axis] * (kernel[axis] - 1) + 1
        low = 1 if pad is None else max(1, span - 2 * pad[axis])
        hw.append(draw(st.integers(low, max(low, min(max_hw, low + 5)))))
    batch = draw(st.sampled_from([None, 1, 2, 3]))  # None: unbatched (C, H, W)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (c_in, *hw) if batch is None else (batch, c_in, *hw)
    inputs = dict(
        input=rng.standard_normal(shape),
        weight=rng.standard_normal((c_out, c_in // groups, *kernel)),
        bias=rng.standard_normal(c_out) if draw(st.booleans()) else None,
    )
    return inputs, dict(stride=stride, padding=padding, dilation=dilation, groups=groups), rng


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_and_backward_match_torch(config):
    inputs, options, rng = config
    check_conv2d(inputs, options, rng)


@settings(max_examples=25, deadline=None)
@given(conv_configs(max_hw=6))
def test_conv2d_reference_loops_agree(config):
    inputs, options, _ = config
    np.testing.assert_allclose(
        F.conv2d_reference(**inputs, **options), F.conv2d(**inputs, **options), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("conv", [F.conv2d, F.conv2d_reference])
def test_notebook_example(conv):
    x = np.array([[-2, -2, -2], [4, 2, -4], [-3, 2, 4]], dtype=np.float64)[None, None]  # (1, 1, 3, 3)
    identity = np.array([[1, 0], [0, 1]], dtype=np.float64)[None, None]  # (1, 1, 2, 2)
    out = conv(x, identity, np.zeros(1))
    np.testing.assert_array_equal(out[0, 0], [[0, -6], [6, 6]])
    np.testing.assert_array_equal(conv(x[0], identity)[0], [[0, -6], [6, 6]])  # unbatched
    torch_out = TF.conv2d(torch.tensor(x), torch.tensor(identity), torch.zeros(1, dtype=torch.float64))
    np.testing.assert_array_equal(out, torch_out.numpy())


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(dilation=2, padding="same"),
        dict(groups=2, padding=(1, 0)),
    ],
)
def test_conv2d_backward_central_differences(options):
    rng = np.random.default_rng(1)
    x, w, b = (
        rng.standard_normal((2, 2, 5, 5)),
        rng.standard_normal((2, 2 // options.get("groups", 1), 3, 2)),
        rng.standard_normal(2),
    )
    gy = rng.standard_normal(F.conv2d(x, w, b, **options).shape)
    analytic = F.conv2d_backward(gy, x, w, b, **options)
    assert gradcheck(
        lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b], analytic, gy, atol=1e-7, rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(2, 3, 8, 8), (4, 3, 3, 3), (4,)])
    out = F.conv2d(x, w, b, padding=1)
    grads = F.conv2d_backward(np.ones_like(out), x, w, b, padding=1)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    expected = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_integer_input_becomes_float64():
    out = F.conv2d(np.ones((1, 1, 3, 3), dtype=np.int64), np.ones((1, 1, 2, 2), dtype=np.int64))
    assert out.dtype == np.float64 and out.shape == (1, 1, 2, 2)


X = np.zeros((1, 4, 6, 6))
W = np.zeros((2, 4, 3, 3))
BAD = [  # (kwargs for conv2d, text the message must contain)
    (dict(input=np.zeros((4, 6)), weight=W), "input.shape=(4, 6)"),
    (dict(input=np.zeros((1, 1, 4, 6, 6)), weight=W), "input.shape"),
    (dict(input=X, weight=np.zeros((2, 4, 3))), "weight.shape=(2, 4, 3)"),
    (dict(input=np.zeros((1, 3, 6, 6)), weight=W), "input.shape=(1, 3, 6, 6)"),
    (dict(input=X, weight=np.zeros((3, 2, 3, 3)), groups=2), "groups=2"),
    (dict(input=X, weight=W, groups=0), "groups=0"),
    (dict(input=X, weight=W, stride=0), "stride=0"),
    (dict(input=X, weight=W, dilation=0), "dilation=0"),
    (dict(input=X, weight=W, padding=-1), "padding=-1"),
    (dict(input=X, weight=W, padding="full"), "padding='full'"),
    (dict(input=X, weight=W, padding="same", stride=2), "stride=2"),
    (dict(input=np.zeros((1, 4, 2, 6)), weight=W), "kernel_size"),
    (dict(input=X, weight=W, dilation=3), "dilation=3"),
    (dict(input=X, weight=W, bias=np.zeros(3)), "bias.shape=(3,)"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_arguments_raise_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        F.conv2d(**kwargs)
    tensors = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises((RuntimeError, ValueError)):
        TF.conv2d(**tensors)


def test_backward_rejects_wrong_grad_output_shape():
    with pytest.raises(ValueError, match="grad_output.shape"):
        F.conv2d_backward(np.zeros((1, 2, 3, 3)), X, W)

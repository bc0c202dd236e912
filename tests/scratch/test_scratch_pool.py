"""max_pool2d and avg_pool2d (and their backward) against torch in float64, and central differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle import check_op

from cnnlab.scratch import functional as F
from cnnlab.scratch.gradcheck import gradcheck


@st.composite
def pool_configs(draw, dilation=True):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    hw = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9)) for d, k, p in zip(dil, kernel, padding)]
    batch = draw(st.sampled_from([None, 1, 2]))
    shape = (draw(st.integers(1, 3)), *hw)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    options = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=draw(st.booleans()))
    if dilation:
        options["dilation"] = dil
    return rng.standard_normal(shape if batch is None else (batch, *shape)), options, rng, draw


@settings(max_examples=80, deadline=None)
@given(pool_configs())
def test_max_pool2d_and_backward_match_torch(config):
    x, options, rng, _ = config
    # A dilated window can miss the input and read only padding: -inf there, and torch's
    # index (and backward write) for it is out of bounds, so leave such configurations out.
    assume(np.isfinite(F.max_pool2d(x, **options)).all())
    check_op(
        lambda **a: F.max_pool2d(**a, **options),
        lambda g, **a: F.max_pool2d_backward(g, **a, **options),
        lambda **t: TF.max_pool2d(**t, **options),
        dict(input=x),
        grad_names=("input",),
        rng=rng,
    )
    out, indices = F.max_pool2d(x, **options, return_indices=True)
    _, expected = TF.max_pool2d(torch.tensor(x), **options, return_indices=True)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected.numpy())


@settings(max_examples=80, deadline=None)
@given(pool_configs(dilation=False))
def test_avg_pool2d_and_backward_match_torch(config):
    x, options, rng, draw = config
    options.update(
        count_include_pad=draw(st.booleans()), divisor_override=draw(st.sampled_from([None, 1, 3, 7, -2]))
    )
    check_op(
        lambda **a: F.avg_pool2d(**a, **options),
        lambda g, **a: F.avg_pool2d_backward(g, **a, **options),
        lambda **t: TF.avg_pool2d(**t, **options),
        dict(input=x),
        grad_names=("input",),
        rng=rng,
    )


def test_max_pool2d_ties_and_nan_pick_torch_index():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, np.nan, 2.0], [np.nan, 3.0, np.nan]]]])  # (1, 1, 3, 3)
    for options in [dict(kernel_size=2, stride=1), dict(kernel_size=2, ceil_mode=True)]:
        out, indices = F.max_pool2d(x, **options, return_indices=True)
        t_out, t_indices = TF.max_pool2d(torch.tensor(x), **options, return_indices=True)
        np.testing.assert_array_equal(out, t_out.numpy())
        np.testing.assert_array_equal(indices, t_indices.numpy())
    xt = torch.zeros((1, 1, 4, 4), dtype=torch.float64, requires_grad=True)  # all ties
    TF.max_pool2d(xt, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(
        F.max_pool2d_backward(np.ones((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)), 2, 1), xt.grad.numpy()
    )


@pytest.mark.parametrize(
    "pool, backward, options",
    [
        (F.max_pool2d, F.max_pool2d_backward, dict(kernel_size=2)),
        (
            F.max_pool2d,
            F.max_pool2d_backward,
            dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True),
        ),
        (
            F.avg_pool2d,
            F.avg_pool2d_backward,
            dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
        ),
        (F.avg_pool2d, F.avg_pool2d_backward, dict(kernel_size=2, ceil_mode=True, divisor_override=3)),
    ],
)
def test_pool_backward_central_differences(pool, backward, options):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 6))
    gy = rng.standard_normal(pool(x, **options).shape)
    assert gradcheck(lambda x: pool(x, **options), [x], [backward(gy, x, **options)], gy, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 6)).astype(dtype)
    for pool, backward in [(F.max_pool2d, F.max_pool2d_backward), (F.avg_pool2d, F.avg_pool2d_backward)]:
        out = pool(x, 2)
        assert out.dtype == dtype and backward(np.ones_like(out), x, 2).dtype == dtype


X = np.zeros((1, 2, 6, 6))
BAD = [  # (pool, kwargs, text the message must contain)
    (F.max_pool2d, dict(input=np.zeros((6, 6)), kernel_size=2), "input.shape"),
    (F.max_pool2d, dict(input=X, kernel_size=0), "kernel_size=0"),
    (F.max_pool2d, dict(input=X, kernel_size=2, stride=0), "stride=0"),
    (F.max_pool2d, dict(input=X, kernel_size=2, padding=2), "padding=2"),
    (F.max_pool2d, dict(input=X, kernel_size=2, dilation=0), "dilation=0"),
    (F.max_pool2d, dict(input=X, kernel_size=7), "kernel_size=7"),
    (F.avg_pool2d, dict(input=X, kernel_size=3, padding=(0, 2)), "padding"),
    (F.avg_pool2d, dict(input=X, kernel_size=2, divisor_override=0), "divisor_override=0"),
    (F.avg_pool2d, dict(input=np.zeros((1, 1, 2, 6, 6)), kernel_size=2), "input.shape"),
]


@pytest.mark.parametrize("pool, kwargs, message", BAD)
def test_bad_arguments_raise_like_torch(pool, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pool(**kwargs)
    tensors = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises((RuntimeError, ValueError)):
        getattr(TF, pool.__name__)(**tensors)


def test_pool_padding_must_be_a_number():
    with pytest.raises(ValueError, match="padding='same'"):
        F.max_pool2d(X, 3, padding="same")

"""adaptive_max_pool2d and adaptive_avg_pool2d (and their backward, and their layers) against
torch in float64, and central differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import ATOL, RTOL, check_op

from cnnlab.scratch import functional as F
from cnnlab.scratch import nn
from cnnlab.scratch.gradcheck import gradcheck

sizes = st.one_of(st.integers(1, 6), st.tuples(st.integers(1, 6), st.integers(1, 6)))
sizes_or_none = st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 6)))


@st.composite
def adaptive_configs(draw):
    """Input (N, C, H, W) or (C, H, W), output sizes smaller, equal or larger than the input."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    batch = draw(st.sampled_from([None, 1, 3]))
    x = rng.standard_normal(shape if batch is None else (batch, *shape))
    if draw(st.booleans()):  # ties, which must go to the first maximum as in torch
        x = np.round(x)
    return x, draw(st.one_of(sizes, sizes_or_none)), rng


@settings(max_examples=80, deadline=None)
@given(adaptive_configs())
def test_adaptive_max_pool2d_and_backward_match_torch(config):
    x, output_size, rng = config
    check_op(
        lambda input: F.adaptive_max_pool2d(input, output_size),
        lambda g, input: F.adaptive_max_pool2d_backward(g, input, output_size),
        lambda input: TF.adaptive_max_pool2d(input, output_size),
        dict(input=x),
        grad_names=("input",),
        rng=rng,
    )
    _, indices = F.adaptive_max_pool2d(x, output_size, return_indices=True)
    _, expected = TF.adaptive_max_pool2d(torch.tensor(x), output_size, return_indices=True)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected.numpy())


@settings(max_examples=80, deadline=None)
@given(adaptive_configs())
def test_adaptive_avg_pool2d_and_backward_match_torch(config):
    x, output_size, rng = config
    check_op(
        lambda input: F.adaptive_avg_pool2d(input, output_size),
        lambda g, input: F.adaptive_avg_pool2d_backward(g, input, output_size),
        lambda input: TF.adaptive_avg_pool2d(input, output_size),
        dict(input=x),
        grad_names=("input",),
        rng=rng,
    )


def test_adaptive_max_pool2d_nan_is_the_maximum_as_in_torch():
    x = np.array([[[[1.0, np.nan, 3.0], [np.nan, 2.0, 0.0]]]])  # (1, 1, 2, 3)
    for size in [1, (1, 2), (2, 2)]:
        out, indices = F.adaptive_max_pool2d(x, size, return_indices=True)
        t_out, t_indices = TF.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
        np.testing.assert_array_equal(out, t_out.numpy())
        np.testing.assert_array_equal(indices, t_indices.numpy())


@pytest.mark.parametrize(
    "pool, backward",
    [
        (F.adaptive_max_pool2d, F.adaptive_max_pool2d_backward),
        (F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward),
    ],
)
@pytest.mark.parametrize("size", [1, (2, 3), (4, None)])
def test_adaptive_backward_central_differences(pool, backward, size):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 4))
    gy = rng.standard_normal(pool(x, size).shape)
    assert gradcheck(lambda x: pool(x, size), [x], [backward(gy, x, size)], gy, atol=1e-7)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: nn.AdaptiveMaxPool2d(1), lambda: torch.nn.AdaptiveMaxPool2d(1)),
        (lambda: nn.AdaptiveMaxPool2d((2, None)), lambda: torch.nn.AdaptiveMaxPool2d((2, None))),
        (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1)),
        (lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: torch.nn.AdaptiveAvgPool2d((3, 2))),
    ],
)
@pytest.mark.parametrize("shape", [(3, 4, 7, 7), (4, 5, 6)])
def test_adaptive_layers_match_torch(ours, theirs, shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    layer, layer_t = ours(), theirs()
    out, out_t = layer(x), layer_t(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    gy = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(gy))
    np.testing.assert_allclose(layer.backward(gy), xt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output_size", [(1,), [2], (2, 2, 2), -1, (1, -2), 1.5, True])
def test_bad_output_sizes_raise_like_torch(output_size):
    x = np.zeros((1, 2, 4, 4))
    for ours, theirs in [
        (F.adaptive_max_pool2d, TF.adaptive_max_pool2d),
        (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
    ]:
        with pytest.raises(ValueError, match="output_size"):
            ours(x, output_size)
        with pytest.raises((RuntimeError, TypeError, ValueError)):
            theirs(torch.tensor(x), output_size)

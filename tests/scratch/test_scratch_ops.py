"""linear, relu, log_softmax and cross_entropy (and their backward) against torch in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_op

from cnnlab.scratch import functional as F
from cnnlab.scratch.gradcheck import gradcheck, numerical_grad


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=0, max_size=2),
    st.integers(1, 5),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_linear_matches_torch(batch_shape, n_in, n_out, has_bias, seed):
    rng = np.random.default_rng(seed)
    inputs = dict(
        input=rng.standard_normal((*batch_shape, n_in)),
        weight=rng.standard_normal((n_out, n_in)),
        bias=rng.standard_normal(n_out) if has_bias else None,
    )
    check_op(F.linear, F.linear_backward, TF.linear, inputs, ("input", "weight", "bias"), rng)


def test_relu_matches_torch():
    x = np.array([[-1.5, 0.0, 2.0], [3.0, -0.0, 1e-300]])
    check_op(F.relu, F.relu_backward, TF.relu, dict(input=x), ("input",))


@pytest.mark.parametrize("shape, dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1)])
def test_log_softmax_matches_torch(shape, dim):
    x = np.random.default_rng(5).standard_normal(shape) * 10
    check_op(
        lambda input: F.log_softmax(input, dim),
        lambda g, input: F.log_softmax_backward(g, input, dim),
        lambda input: TF.log_softmax(input, dim),
        dict(input=x),
        ("input",),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([None, 1, 4]),
    st.integers(2, 6),
    st.sampled_from(["mean", "sum", "none"]),
    st.sampled_from([0.0, 0.1, 1.0]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_cross_entropy_matches_torch(batch, classes, reduction, smoothing, probabilities, seed):
    rng = np.random.default_rng(seed)
    shape = (classes,) if batch is None else (batch, classes)
    x = rng.standard_normal(shape) * 3
    if probabilities:
        target = rng.dirichlet(np.ones(classes), size=None if batch is None else batch)
    else:
        target = rng.integers(0, classes, size=() if batch is None else batch)
    options = dict(reduction=reduction, label_smoothing=smoothing)
    ours = np.asarray(F.cross_entropy(x, target, **options))
    xt = torch.tensor(x, requires_grad=True)
    expected = TF.cross_entropy(xt, torch.tensor(target), **options)
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    expected.sum().backward()  # for 'none' our backward is that of the summed losses
    np.testing.assert_allclose(
        F.cross_entropy_backward(x, target, **options), xt.grad.numpy(), rtol=1e-10, atol=1e-12
    )


def test_small_op_gradients_by_central_differences():
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    gy = rng.standard_normal((3, 2))
    assert gradcheck(F.linear, [x, w, b], F.linear_backward(gy, x, w, b), gy)
    assert gradcheck(
        lambda x: F.log_softmax(x, 1), [x], [F.log_softmax_backward(gy[:, :1] * x, x, 1)], gy[:, :1] * x
    )
    y = np.array([0, 3, 1])
    assert gradcheck(
        lambda x: F.cross_entropy(x, y, label_smoothing=0.2),
        [x],
        [F.cross_entropy_backward(x, y, label_smoothing=0.2)],
    )
    (numeric,) = numerical_grad(F.relu, [np.array([-1.0, 2.0])])
    np.testing.assert_allclose(numeric, [0.0, 1.0], atol=1e-8)


def test_gradcheck_catches_a_wrong_gradient():
    x = np.array([1.0, 2.0])
    with pytest.raises(AssertionError, match="disagrees"):
        gradcheck(lambda x: x**2, [x], [x])  # the right gradient is 2x
    assert not gradcheck(lambda x: x**2, [x], [x], raise_exception=False)


def test_float32_is_kept():
    x = np.ones((2, 3), np.float32)
    assert F.linear(x, np.ones((4, 3))).dtype == np.float32
    assert F.relu(x).dtype == np.float32 and F.log_softmax(x, 1).dtype == np.float32
    assert F.cross_entropy(x, np.array([0, 1])).dtype == np.float32
    assert F.cross_entropy_backward(x, np.array([0, 1])).dtype == np.float32


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.linear(np.ones((2, 3)), np.ones((4, 2))), "weight.shape=(4, 2)"),
        (lambda: F.linear(np.ones((2, 3)), np.ones((4, 3)), np.ones(3)), "bias.shape=(3,)"),
        (lambda: F.log_softmax(np.ones((2, 3)), 2), "dim=2"),
        (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 3])), "target"),
        (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1]), reduction="avg"), "reduction='avg'"),
        (
            lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1]), label_smoothing=1.5),
            "label_smoothing=1.5",
        ),
        (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), "target.shape=(3,)"),
        (lambda: F.relu(np.array(["a"])), "input.dtype"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()

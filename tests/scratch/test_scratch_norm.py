"""batch_norm and batch_norm_backward, BatchNorm1d and BatchNorm2d against torch in float64,
central differences, and the running statistics over several steps."""

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


@st.composite
def batch_norm_configs(draw):
    """Input (N, C, *) with 0 to 2 spatial axes, affine or not, running statistics or None,
    momentum (negative ones too: torch's OpInfo samples use them), eps, training or eval."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spatial = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), *spatial)
    training = draw(st.booleans())
    if training and np.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1, *shape[1:])  # training needs two values per channel
    channels = shape[1]
    track = not training or draw(st.booleans())
    x = rng.standard_normal(shape) * draw(st.sampled_from([0.1, 1.0, 30.0])) + draw(st.sampled_from([0, 5]))
    inputs = dict(
        input=x,
        running_mean=rng.standard_normal(channels) if track else None,
        running_var=rng.random(channels) + 0.5 if track else None,
        weight=rng.standard_normal(channels) if draw(st.booleans()) else None,
        bias=rng.standard_normal(channels) if draw(st.booleans()) else None,
    )
    options = dict(
        training=training,
        momentum=draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0, -1.2]), st.floats(0, 1))),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
    )
    return inputs, options, rng


@settings(max_examples=120, deadline=None)
@given(batch_norm_configs())
def test_batch_norm_and_backward_match_torch(config):
    inputs, options, rng = config
    seen = {}

    def theirs(**tensors):
        seen.update(tensors)  # torch updates its running statistics in place, as we do ours
        return TF.batch_norm(**tensors, **options)

    check_op(
        lambda **a: F.batch_norm(**a, **options),
        lambda g, **a: F.batch_norm_backward(g, **a, **options),
        theirs,
        inputs,
        grad_names=("input", "weight", "bias"),
        rng=rng,
    )
    for name in ("running_mean", "running_var"):
        if inputs[name] is not None:
            np.testing.assert_allclose(inputs[name], seen[name].numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_central_differences(training, affine):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2, 3)) * 2 + 1
    mean, var = rng.standard_normal(2), rng.random(2) + 0.5
    w, b = (rng.standard_normal(2), rng.standard_normal(2)) if affine else (None, None)
    gy = rng.standard_normal(x.shape)

    def forward(x, *wb):
        return F.batch_norm(x, mean.copy(), var.copy(), *wb, training=training, eps=1e-3)

    grads = F.batch_norm_backward(gy, x, mean, var, w, b, training=training, eps=1e-3)
    inputs = [x, w, b] if affine else [x]
    analytic = grads if affine else grads[:1]
    assert gradcheck(forward, inputs, analytic, gy, atol=1e-7)


@pytest.mark.parametrize(
    "layer, shape",
    [("BatchNorm2d", (4, 3, 5, 6)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (5, 3, 4))],
)
@pytest.mark.parametrize(
    "options",
    [
        {},
        dict(affine=False),
        dict(momentum=None),  # a cumulative average
        dict(momentum=0.3, eps=1e-3),
        dict(track_running_stats=False),
    ],
)
def test_batch_norm_layers_match_torch_over_steps(layer, shape, options):
    """Five training steps then eval: outputs, every gradient, and the buffers after each step."""
    rng = np.random.default_rng(2)
    ours, theirs = getattr(nn, layer)(3, **options).to(np.float64), getattr(torch.nn, layer)(3, **options)
    theirs = theirs.double()
    if ours.affine:
        ours.weight.data[:], ours.bias.data[:] = rng.standard_normal(3), rng.standard_normal(3)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for step in range(6):
        training = step < 5
        ours.train(training), theirs.train(training)
        x = rng.standard_normal(shape) * 3 + step
        xt = torch.tensor(x, requires_grad=True)
        out, out_t = ours(x), theirs(xt)
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL, atol=ATOL)
        if training:
            gy = rng.standard_normal(shape)
            out_t.backward(torch.tensor(gy))
            np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), rtol=RTOL, atol=ATOL)
            for p, t in zip(ours.parameters(), theirs.parameters()):
                np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=RTOL, atol=ATOL)
            ours.zero_grad(), theirs.zero_grad()
        state = ours.state_dict()
        for key, value in theirs.state_dict().items():
            assert state[key].dtype == torch.empty(0, dtype=value.dtype).numpy().dtype, key
            np.testing.assert_allclose(state[key], value.numpy(), rtol=RTOL, atol=ATOL, err_msg=key)


def test_batch_norm_float32_running_statistics_stay_close():
    """float32 after 20 steps: statistics within float32 rounding of torch's (torch accumulates in double)."""
    rng = np.random.default_rng(3)
    ours, theirs = nn.BatchNorm2d(8), torch.nn.BatchNorm2d(8)
    for _ in range(20):
        x = (rng.standard_normal((16, 8, 6, 6)) * 4 + 2).astype(np.float32)
        np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-4)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6)
    assert ours.running_mean.dtype == np.float32 and int(ours.num_batches_tracked) == 20


X = np.zeros((2, 3, 4))
BAD = [  # (kwargs, text the message must contain)
    (dict(input=np.zeros(3), running_mean=None, running_var=None, training=True), "input.shape"),
    (dict(input=X, running_mean=np.zeros(2), running_var=np.ones(3)), "running_mean.shape"),
    (dict(input=X, running_mean=None, running_var=None), "running_mean must be given"),
    (dict(input=X, running_mean=np.zeros(3), running_var=np.ones(3), weight=np.ones(4)), "weight.shape"),
    (dict(input=np.zeros((1, 3)), running_mean=None, running_var=None, training=True), "more than 1 value"),
    (dict(input=X, running_mean=np.zeros(3), running_var=np.ones(3), momentum=None), "momentum=None"),
    (dict(input=X, running_mean=None, running_var=None, training=True, eps=0.0), "eps=0.0"),
    (dict(input=X, running_mean=np.zeros(3), running_var=np.ones(3), eps=-1e-5), "eps=-1e-05"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_arguments_raise_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.batch_norm(**kwargs)
    tensors = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)):
        TF.batch_norm(**tensors)


def test_layers_refuse_the_wrong_rank():
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4)))

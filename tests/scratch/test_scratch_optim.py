"""SGD and Adam: 50 steps on the same parameters and gradient sequence match torch.optim to 1e-12."""

import numpy as np
import pytest
import torch

from cnnlab.scratch import nn, optim

SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]


@pytest.mark.parametrize(
    "ours, theirs, options",
    [
        (optim.SGD, torch.optim.SGD, dict(lr=0.1)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-2, nesterov=True)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=5e-2)),
        (optim.Adam, torch.optim.Adam, dict()),
        (optim.Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
        (optim.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-2)),
        (optim.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True)),
        (optim.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-3)),
    ],
)
def test_fifty_steps_match_torch(ours, theirs, options):
    rng = np.random.default_rng(7)
    params = [nn.Parameter(rng.standard_normal(shape)) for shape in SHAPES]
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours_opt, theirs_opt = ours(params, **options), theirs(tensors, **options)
    for step in range(50):
        for p, t in zip(params, tensors):
            grad = rng.standard_normal(p.shape) * (1 + step % 3)  # varying scale exercises amsgrad's max
            p.grad, t.grad = grad, torch.tensor(grad)
        ours_opt.step()
        theirs_opt.step()
        for p, t in zip(params, tensors):
            np.testing.assert_allclose(
                p.data, t.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"step {step}"
            )


def test_parameters_without_gradient_are_skipped_and_zero_grad_clears():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = np.ones(2)
    opt.step()
    assert np.all(p.data < 1) and np.all(q.data == 1)
    opt.zero_grad()
    assert p.grad is None


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones(3, np.float32))
    for opt in [optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p])]:
        p.grad = np.ones(3, np.float32)
        opt.step()
        assert p.data.dtype == np.float32


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=-1), "lr=-1"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "momentum=-0.5"),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
        (lambda ps: optim.Adam(ps, betas=(0.9, 1.0)), "betas"),
        (lambda ps: optim.Adam(ps, eps=-1e-8), "eps"),
        (lambda ps: optim.Adam(ps, weight_decay=-1), "weight_decay=-1"),
        (lambda ps: optim.Adam([]), "empty"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(np.ones(2))])

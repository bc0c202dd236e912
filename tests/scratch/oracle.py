"""The one comparison helper for scratch ops: run ours and torch's in float64, compare the
output's shape, then its values, then every gradient (torch autograd with a random upstream
gradient against our backward), in the manner of tinygrad's ``helper_test_op``.

Tolerances: rtol 1e-10 and atol 1e-12 in float64. Both sides sum the same products in
different orders, so they differ by a few units in the last place (about 1e-15 relative);
1e-10 leaves room for sums of a few thousand terms and still catches any real mistake.
"""

from __future__ import annotations

import numpy as np
import torch

RTOL, ATOL = 1e-10, 1e-12


def check_op(ours, ours_backward, theirs, inputs: dict, grad_names=(), rng=None, rtol=RTOL, atol=ATOL):
    """Compare ``ours(**inputs)`` with ``theirs(**tensors)`` and their gradients.

    ``inputs`` maps argument names to float64 arrays or plain values; the arrays named in
    ``grad_names`` get ``requires_grad`` on the torch side. ``ours_backward(grad_output,
    **inputs)`` returns one gradient or a tuple of them, in ``grad_names`` order (None for
    an input without one, like a missing bias). Returns our output.
    """
    rng = rng or np.random.default_rng(0)
    tensors = {
        name: torch.tensor(value, dtype=torch.float64, requires_grad=name in grad_names)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f"
        else torch.tensor(value)
        if isinstance(value, np.ndarray)
        else value
        for name, value in inputs.items()
    }
    expected = theirs(**tensors)
    got = ours(**inputs)
    assert got.shape == tuple(expected.shape), f"shape {got.shape} != torch's {tuple(expected.shape)}"
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    if ours_backward is None:
        return got
    grad_output = rng.standard_normal(got.shape)
    expected.backward(torch.tensor(grad_output))
    grads = ours_backward(grad_output, **inputs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(grad_names), f"{len(grads)} gradients for {grad_names}"
    for name, grad in zip(grad_names, grads):
        want = tensors[name].grad if isinstance(tensors[name], torch.Tensor) else None
        if want is None:
            assert grad is None, f"gradient for {name} should be None"
            continue
        assert grad.shape == tuple(want.shape), f"grad {name}: shape {grad.shape} != {tuple(want.shape)}"
        np.testing.assert_allclose(grad, want.numpy(), rtol=rtol, atol=atol, err_msg=f"grad of {name}")
    return got


def check_conv2d(inputs: dict, options: dict, rng=None) -> None:
    """cnnlab.scratch's conv2d and conv2d_backward against torch's conv2d, with ``options``
    (stride, padding, ...), every gradient (input, weight, bias) included."""
    import torch.nn.functional as TF

    from cnnlab.scratch import functional as F

    check_op(
        lambda **a: F.conv2d(**a, **options),
        lambda g, **a: F.conv2d_backward(g, **a, **options),
        lambda **t: TF.conv2d(**t, **options),
        inputs,
        grad_names=("input", "weight", "bias"),
        rng=rng,
    )

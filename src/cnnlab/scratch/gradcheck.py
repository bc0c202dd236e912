"""Central-difference gradient checks: an oracle independent of any backward code.

For a function f and an upstream gradient G, the gradient of L = sum(f(x) * G) is estimated
one element at a time as

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

with error O(eps^2) from truncation plus O(u / eps) from rounding (u the unit roundoff). In
float64 with eps = 1e-6 that leaves about 1e-8 relative error, so use it on tiny float64
inputs; in float32 (u ~ 6e-8) the same check can only promise about 1e-2.
"""

from __future__ import annotations

import numpy as np

__all__ = ["numerical_grad", "gradcheck"]


def numerical_grad(fn, inputs, grad_output=None, eps: float = 1e-6) -> list[np.ndarray]:
    """Central-difference gradients of ``sum(fn(*inputs) * grad_output)`` for every input.

    ``grad_output`` defaults to ones (the gradient of ``sum(fn(*inputs))``).
    """
    inputs = [np.array(x, dtype=np.float64) for x in inputs]

    def loss():
        out = np.asarray(fn(*inputs), dtype=np.float64)
        return float(np.sum(out * (1.0 if grad_output is None else grad_output)))

    grads = []
    for x in inputs:
        grad = np.zeros_like(x)
        flat, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: editing flat edits x
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = loss()
            flat[i] = saved - eps
            minus = loss()
            flat[i] = saved
            flat_grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def gradcheck(
    fn,
    inputs,
    analytic,
    grad_output=None,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    raise_exception: bool = True,
) -> bool:
    """Compare ``analytic`` gradients (one per input) with ``numerical_grad``.

    Returns True when every element satisfies ``|a - n| <= atol + rtol |n|``; otherwise
    raises AssertionError naming the worst input and element (or returns False).
    """
    numeric = numerical_grad(fn, inputs, grad_output, eps)
    for index, (a, n) in enumerate(zip(analytic, numeric)):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != n.shape:
            raise ValueError(f"analytic[{index}] has shape {a.shape}, expected {n.shape}")
        bad = np.abs(a - n) > atol + rtol * np.abs(n)
        if bad.any():
            if not raise_exception:
                return False
            worst = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
            raise AssertionError(
                f"gradient of input {index} disagrees at {worst}: "
                f"analytic {a[worst]!r}, numerical {n[worst]!r}"
            )
    return True

"""SGD and Adam following torch.optim's update rules exactly (tested to 1e-12 in float64).

Parameters whose ``grad`` is None are skipped, as in torch. References: Sutskever et al. 2013
(momentum, Nesterov); Kingma & Ba 2015 (Adam); Reddi et al. 2018 (AMSGrad).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm_"]


def _non_negative(value, name):
    if (
        not (isinstance(value, (int, float)) and not isinstance(value, bool))
        or value < 0
        or math.isnan(value)
    ):
        raise ValueError(f"{name} must be a non-negative number. Received: {name}={value!r}")
    return float(value)


class Optimizer:
    """Holds the parameter list and per-parameter state; ``step()`` updates in place."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("params is an empty list; the optimizer has nothing to update")
        self.lr = _non_negative(lr, "lr")
        self.state = [dict() for _ in self.params]

    def zero_grad(self) -> None:
        """Drop the gradients (torch's default ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient by the optimizer's rule."""
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                p.data = self._update(p.data, p.grad, state)

    def _update(self, param, grad, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    With g_t the gradient, lambda the weight decay, mu the momentum, tau the dampening::

        g_t <- g_t + lambda * theta_{t-1}                     (if weight_decay)
        b_t  = g_t                   at the first step        (if momentum)
        b_t  = mu * b_{t-1} + (1 - tau) * g_t  afterwards
        g_t <- g_t + mu * b_t  if nesterov,  else  g_t <- b_t
        theta_t = theta_{t-1} - lr * g_t
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        super().__init__(params, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.dampening = float(dampening)
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov needs momentum > 0 and dampening = 0. Received: "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        self.nesterov = bool(nesterov)

    def _update(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            if "momentum_buffer" not in state:
                buf = grad.copy()
            else:
                buf = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * grad
            state["momentum_buffer"] = buf
            grad = grad + self.momentum * buf if self.nesterov else buf
        return param - self.lr * grad


class Adam(Optimizer):
    """Adam (and AMSGrad), with L2 weight decay added to the gradient as torch.optim.Adam.

    With beta1, beta2, eps and step t = 1, 2, ...::

        g_t <- g_t + lambda * theta_{t-1}                     (if weight_decay)
        m_t  = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t  = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        v_t' = max(v'_{t-1}, v_t) if amsgrad, else v_t
        theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t') / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False):
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1). Received: betas={betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)

    def _update(self, param, grad, state):
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        state["exp_avg"] = state["exp_avg"] + (1 - beta1) * (grad - state["exp_avg"])  # torch's lerp
        state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
        second = state["exp_avg_sq"]
        if self.amsgrad:
            second = state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], second)
        step_size = self.lr / (1 - beta1**t)
        denom = np.sqrt(second) / math.sqrt(1 - beta2**t) + self.eps
        return param - step_size * (state["exp_avg"] / denom)


def clip_grad_norm_(parameters, max_norm: float) -> float:
    """Scale the gradients in place so their global L2 norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` (NOTE: torch keeps it in ``torch.nn.utils``):

        total = sqrt(sum_p ||g_p||^2),   g_p <- g_p * min(1, max_norm / (total + 1e-6))

    Parameters without a gradient are skipped. Returns the norm before clipping.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.ravel()) for g in grads], dtype=grads[0].dtype)
    total = np.linalg.norm(norms)
    coef = min(float(max_norm / (total + 1e-6)), 1.0)
    for g in grads:
        g *= g.dtype.type(coef)
    return float(total)

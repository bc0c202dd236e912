"""The layers between convolutions, up close, for one image: each with the formula it applies and
the real numbers it applied it to (float32, as the model computed them, never the 8-bit heatmaps).

- An activation (ReLU and its kin): a map before and after, and the formula, so a cell reads
  ``max(0, -0.73) = 0``.
- Batch norm: ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` with the channel's running
  statistics and learned scale and shift, as evaluation mode uses them.
- A dense (Linear) layer's neuron: every input times its weight, the largest contributions first,
  and, when the inputs were flattened from maps, the map and cell each came from.
- A residual sum: the main path's map, the shortcut's and their sum.

Each function returns a JSON-ready dict; a ValueError names a bad field (the server's 400).
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab.inspect.convolve import format_number as num
from cnnlab.inspect.explorer.network import INPUT, Forward, Network, Step, quantize, step_of
from cnnlab.inspect.kinds import KINDS

__all__ = ["activation_detail", "batchnorm_detail", "dense_detail", "add_detail", "TOP"]

TOP = 10  # a dense neuron's largest contributions, written out one by one


def _channel(values: np.ndarray, channel: int, name: str = "channel") -> np.ndarray:
    if not 0 <= channel < len(values):
        raise ValueError(f"{name} must be in 0..{len(values) - 1}. Received: {name}={channel}")
    return values[channel]


def _source(network: Network, forward: Forward, step: Step) -> np.ndarray:
    """What the step's layer received: kept by its hook when it was (a traced network's forward may
    work between layers), else the output of the step that feeds it."""
    kept = forward.inputs.get(step.index)
    if kept is not None:
        return kept
    source = step.sources[0]
    return forward.x if source == INPUT else forward.outputs[source]


def activation_detail(network: Network, forward: Forward, index: int, channel: int) -> dict:
    """Map ``channel`` of activation step ``index``: the values it received and what it gave."""
    step = step_of(network, index, "activation", "an activation")
    before = _source(network, forward, step)
    x, y = (
        _channel(v.reshape(len(v), -1) if v.ndim > 1 else v[None], channel)
        for v in (before, forward.outputs[index])
    )
    module = network.module(step)
    template = KINDS[step.kind].formula
    assert template is not None  # the "activation" close-up is given to the kinds with a formula
    formula = template.format(m=module)  # e.g. LeakyReLU's {m.negative_slope}
    return {
        "layer": index,
        "channel": channel,
        "kind": step.kind,
        "formula": f"y = {formula}",
        "input": x.tolist(),
        "output": y.tolist(),
        "zeroed": int(((x != 0) & (y == 0)).sum()),
        "negative": int((x < 0).sum()),
    }


def batchnorm_detail(network: Network, forward: Forward, index: int, channel: int) -> dict:
    """Channel ``channel`` of batch-norm step ``index``: its statistics, scale and shift, the map
    (or value) before and after, and one value written out."""
    step = step_of(network, index, "batchnorm", "a batch norm")
    bn = network.module(step)
    before, after = _source(network, forward, step), forward.outputs[index]
    x, y = _channel(before, channel), _channel(after, channel)
    mean, var = float(bn.running_mean[channel]), float(bn.running_var[channel])
    gamma = float(bn.weight[channel].detach()) if bn.weight is not None else 1.0
    beta = float(bn.bias[channel].detach()) if bn.bias is not None else 0.0
    first_x, first_y = float(np.ravel(x)[0]), float(np.ravel(y)[0])
    scale = gamma / math.sqrt(var + bn.eps)
    return {
        "layer": index,
        "channel": channel,
        "kind": step.kind,
        "mean": mean,
        "var": var,
        "eps": bn.eps,
        "gamma": gamma,
        "beta": beta,
        "scale": scale,
        "shift": beta - mean * scale,
        "input": np.asarray(x).tolist(),
        "output": np.asarray(y).tolist(),
        "text": f"({num(first_x)} - {num(mean)}) / sqrt({num(var)} + {bn.eps:g}) x {num(gamma)} "
        f"+ {num(beta)} = {num(first_y)}",
    }


def _origin(network: Network, forward: Forward, step: Step):
    """The (C, H, W) shape a Linear layer's inputs were flattened from, if they were."""
    source = step.sources[0]
    if source == INPUT or network.steps[source].kind != "Flatten":
        return None
    received = forward.inputs.get(source)  # a traced network: what the Flatten really received
    if received is not None:
        shape = received.shape
    else:
        before = network.steps[source].sources[0]
        shape = network.input_shape if before == INPUT else network.steps[before].shape
    return tuple(shape) if len(shape) == 3 else None


def dense_detail(network: Network, forward: Forward, index: int, neuron: int) -> dict:
    """Neuron ``neuron`` of Linear step ``index``: its inputs, weights, bias and every product, the
    largest (by size) written out, and where each input came from when it was flattened from maps."""
    step = step_of(network, index, "dense", "a dense (Linear) layer")
    linear = network.module(step)
    weight = linear.weight.detach().float().numpy()  # (out, in)
    _channel(weight, neuron, "neuron")
    x = _source(network, forward, step).reshape(-1).astype(np.float64)  # (in,)
    w = weight[neuron].astype(np.float64)
    products = x * w
    bias = float(linear.bias[neuron].detach()) if linear.bias is not None else 0.0
    value = float(forward.outputs[index][neuron])
    order = np.argsort(-np.abs(products), kind="stable")
    top = order[:TOP]
    rest = math.fsum(products[order[TOP:]])
    terms = [f"({num(x[i])})({num(w[i])})" for i in top]
    if len(order) > TOP:
        terms.append(f"({num(rest)}: the other {len(order) - TOP} products)")
    if linear.bias is not None:
        terms.append(f"({num(bias)}) bias")
    origin = _origin(network, forward, step)
    where = (lambda i: [int(v) for v in np.unravel_index(int(i), origin)]) if origin else (lambda i: None)
    return {
        "layer": index,
        "neuron": neuron,
        "kind": step.kind,
        "inputs": len(x),
        "value": value,
        "sum": math.fsum(products) + bias,
        "bias": bias,
        "text": f"y[{neuron}] = {' + '.join(terms)} = {num(value)}",
        "top": [
            {
                "index": int(i),
                "input": float(x[i]),
                "weight": float(w[i]),
                "product": float(products[i]),
                "from": where(i),
            }
            for i in top
        ],
        "positive": float(products[products > 0].sum()),
        "negative": float(products[products < 0].sum()),
        "origin": list(origin) if origin else None,
        "products": quantize(
            products.reshape(origin).astype(np.float32) if origin else products[None].astype(np.float32)
        ),
    }


def add_detail(network: Network, forward: Forward, index: int, channel: int) -> dict:
    """Map ``channel`` of a residual sum: the main path's, the shortcut's (or the block's input)
    and the sum."""
    step = step_of(network, index, "add", "a residual sum")
    main, short = (forward.x if s == INPUT else forward.outputs[s] for s in step.sources)
    return {
        "layer": index,
        "channel": channel,
        "kind": step.kind,
        "main": _channel(main, channel).tolist(),
        "shortcut": _channel(short, channel).tolist(),
        "output": _channel(forward.outputs[index], channel).tolist(),
    }

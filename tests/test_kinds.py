"""The one table of layer kinds (``cnnlab.inspect.kinds``), checked kind by kind against torch.

Each module kind in the table, as a torch layer: the summary's output shape is torch's, its
multiply-adds an independent count, and the explorer's window of one output cell the box of input
pixels its gradient reaches. Each activation: the explorer opens it up close with a formula that
gives the numbers torch gave, ``show features`` shows a convolution's maps after it, and Grad-CAM
takes its output as the convolution's rectified maps. Tolerance: float32 rounding, 1e-6.
"""

import ast
import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data import FASHION_MNIST
from cnnlab.inspect import features, saliency
from cnnlab.inspect.explorer import compute, explain, network
from cnnlab.inspect.kinds import KINDS
from cnnlab.inspect.summary import summarize

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
INPUT = (3, 9, 9)
MODULE_KINDS = sorted(name for name, kind in KINDS.items() if kind.read is not None)
# torch's activation modules that act on each value alone (softmax normalises over a dimension)
ACTIVATIONS = [k for k in MODULE_KINDS if k in nn.modules.activation.__all__ and "Softmax" not in k]

# One torch layer per kind, with options other than the defaults where it has them. A kind added to
# the table without one here fails test_every_kind_has_a_torch_layer_here.
LAYERS = {
    "Conv2d": lambda: nn.Conv2d(3, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=3),
    "MaxPool2d": lambda: nn.MaxPool2d(2, ceil_mode=True),
    "AvgPool2d": lambda: nn.AvgPool2d(2, padding=1),
    "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((4, None)),
    "AdaptiveMaxPool2d": lambda: nn.AdaptiveMaxPool2d(2),
    "Linear": lambda: nn.Linear(math.prod(INPUT), 5),
    "Flatten": nn.Flatten,
    "BatchNorm2d": lambda: nn.BatchNorm2d(3),
    "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "ReLU": nn.ReLU,
    "ReLU6": nn.ReLU6,
    "LeakyReLU": lambda: nn.LeakyReLU(0.25),
    "PReLU": nn.PReLU,
    "ELU": lambda: nn.ELU(0.5),
    "SELU": nn.SELU,
    "CELU": lambda: nn.CELU(0.75),
    "GELU": nn.GELU,
    "SiLU": nn.SiLU,
    "Mish": nn.Mish,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
    "Hardswish": nn.Hardswish,
    "Hardsigmoid": nn.Hardsigmoid,
    "Hardtanh": lambda: nn.Hardtanh(-2.0, 3.0),
    "Softplus": lambda: nn.Softplus(beta=2.0),
    "Softmax": lambda: nn.Softmax(dim=1),
    "LogSoftmax": lambda: nn.LogSoftmax(dim=1),
    "Dropout": lambda: nn.Dropout(0.25),
    "Dropout1d": lambda: nn.Dropout1d(0.25),
    "Dropout2d": lambda: nn.Dropout2d(0.25),
    "AlphaDropout": lambda: nn.AlphaDropout(0.25),
    "Identity": nn.Identity,
}
# What the formula must show of its module's own options.
OPTIONS_SHOWN = {
    "LeakyReLU": ["0.25"],
    "ELU": ["0.5"],
    "CELU": ["0.75"],
    "Hardtanh": ["-2.0", "3.0"],
    "Softplus": ["2.0"],
}


def alone(kind: str) -> tuple[nn.Module, tuple[int, ...]]:
    """The kind's layer in eval mode, and the input shape (one image) it takes."""
    shapes = {"Linear": (math.prod(INPUT),), "BatchNorm1d": (3,), "Dropout1d": (3, 9)}
    return LAYERS[kind]().eval(), shapes.get(kind, INPUT)


def independent_mult_adds(layer: nn.Module, output: torch.Tensor) -> int:
    """Per image: one per weight used per output value (torch's modules read directly)."""
    if isinstance(layer, nn.Conv2d):
        return output[0].numel() * layer.weight[0].numel()
    if isinstance(layer, nn.Linear):
        return output[0].numel() * layer.in_features
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return output[0].numel()
    return 0


def test_every_kind_has_a_torch_layer_here():
    assert set(LAYERS) == set(MODULE_KINDS)


@pytest.mark.parametrize("kind", MODULE_KINDS)
def test_the_summary_of_each_kind_gives_torchs_shape_and_counts_its_mult_adds(kind):
    layer, shape = alone(kind)
    with torch.no_grad():
        output = layer(torch.randn(2, *shape))
    row = summarize(nn.Sequential(layer), shape, batch_size=2).rows[-1]
    assert row.kind == kind
    assert row.shape == tuple(output.shape[1:])
    assert row.mult_adds == independent_mult_adds(layer, output)


def test_an_adaptive_pool_that_keeps_one_side_is_described():
    layer, shape = alone("AdaptiveAvgPool2d")
    row = summarize(nn.Sequential(layer), shape).rows[-1]
    assert (row.detail, row.shape) == ("to 4xNone", (3, 4, 9))


def gradient_box(layer: nn.Module, shape, cell) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input pixels output ``cell`` of channel 0 has a gradient for."""
    x = torch.rand(1, *shape, dtype=torch.float64, requires_grad=True)
    layer(x)[0, 0][cell].backward()
    rows, cols = np.nonzero(x.grad[0].abs().sum(0).numpy())
    return (rows.min(), cols.min(), rows.max(), cols.max())


@pytest.mark.parametrize("kind", ["Conv2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Tanh"])
def test_the_window_of_an_output_cell_is_where_its_gradient_reaches(kind):
    """Exactly, for a window inside the image; at the border, the gradient stays inside the window
    (which may span padding, and a dilated kernel's gaps). A max pool's gradient is one pixel of it."""
    layer, shape = alone(kind)
    layer = layer.double()
    if kind == "Conv2d":  # positive weights: every tap of the window leaves a gradient
        nn.init.constant_(layer.weight, 1.0)
    options = KINDS[kind].read(layer)
    out_hw = tuple(layer(torch.zeros(1, *shape, dtype=torch.float64)).shape[2:])
    h, w = shape[1:]
    exact = 0
    for cell in [(0, 0), (out_hw[0] - 1, out_hw[1] - 1), (out_hw[0] // 2, out_hw[1] // 2)]:
        top, left, bottom, right = KINDS[kind].window(options, (*cell, *cell), (h, w), out_hw)
        r0, c0, r1, c1 = gradient_box(layer, shape, cell)
        if kind != "AdaptiveMaxPool2d" and top >= 0 and left >= 0 and bottom < h and right < w:
            assert (top, left, bottom, right) == (r0, c0, r1, c1), cell
            exact += 1
        else:
            assert top <= r0 <= r1 <= bottom and left <= c0 <= c1 <= right, cell
    assert exact or kind == "AdaptiveMaxPool2d"


def with_activation(kind: str, before=()) -> nn.Sequential:
    """A 1x28x28 classifier: conv, then ``before``, then the kind's layer, then a linear layer."""
    torch.manual_seed(0)
    probe = nn.Sequential(nn.Conv2d(1, 2, 3), *before)
    flat = probe(torch.zeros(1, 1, 28, 28)).numel()
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), *before, LAYERS[kind](), nn.Flatten(), nn.Linear(flat, 10)
    ).eval()


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_the_explorer_opens_each_activation_with_a_formula_that_gives_torchs_numbers(kind):
    assert KINDS[kind].activation
    net = network.Network(with_activation(kind), FASHION_MNIST.dataset)
    assert net.steps[1].as_json()["closeup"] == "activation"
    detail = explain.activation_detail(net, net.run(image()), 1, 1)
    module = net.module(net.steps[1])
    with torch.no_grad():
        expected = module(torch.tensor(detail["input"])[None, None])[0, 0].numpy()  # (H W,)
    np.testing.assert_allclose(detail["output"], expected, rtol=1e-6, atol=1e-6)
    assert "{" not in detail["formula"] and "}" not in detail["formula"]
    for value in OPTIONS_SHOWN.get(kind, []):
        assert value in detail["formula"]


@pytest.mark.parametrize("kind", ["Softmax", "Dropout2d", "Identity"])
def test_layers_that_are_no_activation_have_no_close_up(kind):
    net = network.Network(with_activation(kind), FASHION_MNIST.dataset)
    assert net.steps[1].as_json()["closeup"] is None
    with pytest.raises(ValueError, match="not an activation"):
        explain.activation_detail(net, net.run(image()), 1, 0)
    served = types.SimpleNamespace(network=net, dataset=FASHION_MNIST.dataset)
    with pytest.raises(ValueError, match="has no explanation view"):
        compute.explained(served, {"layer": 1, "channel": 0})


def trained(model: nn.Module):
    """What ``features.capture`` reads of a loaded run."""
    dataset = FASHION_MNIST.dataset
    return types.SimpleNamespace(
        model=model,
        input_shape=(1, 28, 28),
        prepare=lambda x: torch.from_numpy(dataset.normalize(x[:, None])),
    )


@pytest.mark.parametrize("kind", [*ACTIVATIONS, "Dropout2d", "Softmax"])
def test_show_features_draws_a_convolutions_maps_after_the_activation_that_follows_it(kind):
    model = with_activation(kind)
    captures, _ = features.capture(trained(model), image()[None])
    with torch.no_grad():
        x = torch.from_numpy(FASHION_MNIST.dataset.normalize(image()[None, None]))
        conv = model[0](x)
        after = model[1](conv)
    activated = KINDS[kind].activation
    assert captures[0].detail.endswith(f" + {kind}") == activated
    np.testing.assert_allclose(
        captures[0].output, (after if activated else conv).numpy(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("kind", [*ACTIVATIONS, "Dropout2d"])
def test_gradcam_takes_the_activation_past_batch_norm_and_pooling_as_the_rectified_maps(kind):
    model = with_activation(kind, before=(nn.BatchNorm2d(2), nn.MaxPool2d(2)))
    assert saliency.rectified(model) == ({"0": "3"} if KINDS[kind].activation else {})


def test_no_module_but_the_table_lists_layer_kinds():
    """A module-level tuple, list, set or dict of two or more kind names outside kinds.py is a second
    table, which the next new kind would have to be added to as well."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "kinds.py" or "scratch" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                names = {
                    n.value
                    for n in ast.walk(node.value)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in KINDS
                }
                if len(names) >= 2:
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {sorted(names)}")
    assert not offenders, offenders

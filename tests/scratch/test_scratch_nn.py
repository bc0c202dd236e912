"""Layers, modules and the notebook models against torch; the no-torch import rule."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab import scratch
from cnnlab.models import build_model
from cnnlab.scratch import nn, optim


def build_seed(rng, dtype=np.float32):
    """The notebook's network from the one definition in cnnlab.models, built with cnnlab.scratch."""
    return build_model("seed", (1, 28, 28), 10, "numpy", rng=rng, dtype=dtype)


def build_convnet(rng, dtype=np.float32):
    return build_model("convnet", (1, 28, 28), 10, "numpy", rng=rng, dtype=dtype)


def torch_notebook_net(relu_on_logits):
    layers = [
        tnn.Conv2d(1, 32, 3),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(1600, 128),
        tnn.ReLU(),
        tnn.Linear(128, 10),
    ]
    return tnn.Sequential(*layers, *([tnn.ReLU()] if relu_on_logits else []))


def copy_weights(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(
    "ours, theirs, shape",
    [
        (
            lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2),
            lambda: tnn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2),
            (2, 4, 7, 8),
        ),
        (
            lambda: nn.Conv2d(3, 5, 4, padding="same", bias=False),
            lambda: tnn.Conv2d(3, 5, 4, padding="same", bias=False),
            (3, 6, 6),
        ),
        (lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
        (
            lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
            lambda: tnn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
            (2, 3, 7, 6),
        ),
        (
            lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
            lambda: tnn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
            (2, 3, 7, 6),
        ),
        (lambda: nn.ReLU(), lambda: tnn.ReLU(), (3, 4)),
        (lambda: nn.Flatten(), lambda: tnn.Flatten(), (2, 3, 4, 5)),
        (lambda: nn.Flatten(0, 1), lambda: tnn.Flatten(0, 1), (2, 3, 4, 5)),
    ],
)
def test_layer_forward_backward_match_torch(ours, theirs, shape):
    rng = np.random.default_rng(8)
    ours, theirs = ours().to(np.float64), theirs().double()
    copy_weights(ours, theirs)
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    out, out_t = ours(x), theirs(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(gy))
    np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), (name_t, t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == name_t
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradients_accumulate_until_zero_grad():
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((1, 3), np.float32)
    for _ in range(2):
        layer(x)
        layer.backward(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(layer.weight.grad, 2 * np.ones((2, 3)))
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_default_init_is_torchs_kaiming_uniform():
    conv = nn.Conv2d(32, 64, 3, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(32 * 9)
    w = conv.weight.data
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound  # uniform(-b, b) has std b / sqrt(3)
    torch_w = tnn.Conv2d(32, 64, 3).weight.detach().numpy()
    assert abs(torch_w.std() - w.std()) < 0.03 * bound
    same = nn.Conv2d(32, 64, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same.weight.data, w)  # seeded: reproducible


@pytest.mark.parametrize("build, relu_on_logits", [(build_seed, True), (build_convnet, False)])
def test_models_state_dict_matches_torch_both_ways(build, relu_on_logits):
    ours, theirs = build(np.random.default_rng(0)), torch_notebook_net(relu_on_logits)
    assert (
        list(ours.state_dict())
        == list(theirs.state_dict())
        == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"]
    )
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    assert sum(p.data.size for p in ours.parameters()) == 225_034
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})  # ours -> torch
    fresh = build(np.random.default_rng(1))
    copy_weights(fresh, theirs)  # torch -> ours
    for a, b in zip(fresh.state_dict().values(), ours.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_mismatches():
    model = build_convnet(0)
    state = model.state_dict()
    with pytest.raises(ValueError, match="Missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "9.bias"})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({**state, "9.bias": np.zeros(11)})


# float32: Adam divides by sqrt(v), so a gradient that is rounding noise still moves its
# weight by about lr; losses and logits stay within 1e-4, the weights are compared in float64.
# (5e-4 for float32: a run under heavy load once missed 1e-4, as thread timing reorders float32 sums.)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 5e-4)])
@pytest.mark.parametrize("relu_on_logits", [True, False])
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda lib, ps: lib.SGD(ps, lr=0.05, momentum=0.9),
        lambda lib, ps: lib.Adam(ps, lr=1e-3),
    ],
)
def test_training_losses_match_torch(dtype, rtol, relu_on_logits, make_opt):
    """Same weights, same batches: the same losses over the first steps (within float32 rounding)."""
    rng = np.random.default_rng(9)
    theirs = torch_notebook_net(relu_on_logits).to(torch.float64 if dtype == np.float64 else torch.float32)
    build = build_seed if relu_on_logits else build_convnet
    ours = build(rng, dtype=dtype)
    copy_weights(ours, theirs)
    opt, opt_t = make_opt(optim, ours.parameters()), make_opt(torch.optim, theirs.parameters())
    for _ in range(4):
        x, y = rng.random((16, 1, 28, 28)).astype(dtype), rng.integers(0, 10, 16)
        loss, logits = scratch.train_step(ours, opt, x, y)
        opt_t.zero_grad()
        logits_t = theirs(torch.tensor(x))
        loss_t = tnn.functional.cross_entropy(logits_t, torch.tensor(y))
        loss_t.backward()
        opt_t.step()
        assert isinstance(loss, float) and np.isfinite(loss) and logits.dtype == dtype
        np.testing.assert_allclose(loss, loss_t.item(), rtol=rtol)
        np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=rtol, atol=rtol)
    for p, t in zip(ours.parameters(), theirs.parameters()):
        if dtype == np.float64:
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_evaluate_runs_in_eval_mode_and_keeps_nothing():
    model = build_convnet(0)
    x, y = np.random.default_rng(0).random((30, 1, 28, 28), dtype=np.float32), np.arange(30) % 10
    loss, accuracy = scratch.evaluate(model, x, y, batch_size=8)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    assert model.training and model[0]._cache is None  # mode restored, no im2col kept
    assert scratch.predict(model, x).shape == (30, 10)
    model.eval()
    model(x[:2])
    with pytest.raises(RuntimeError, match="forward pass in training mode"):
        model.backward(np.ones((2, 10), np.float32))


def test_importing_scratch_does_not_import_torch():
    src = str(Path(__file__).resolve().parents[2] / "src")
    modules = sorted(f"cnnlab.scratch.{p.stem}" for p in Path(src, "cnnlab", "scratch").glob("[!_]*.py"))
    assert "cnnlab.scratch.conv" in modules
    code = (
        f"import cnnlab.scratch, cnnlab.models, cnnlab.shapes, {', '.join(modules)}, sys; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)

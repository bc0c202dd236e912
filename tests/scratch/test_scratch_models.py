"""Every registry model in both backends from the same state dict: the same keys, logits, gradients
and buffers in train and eval mode, and the same losses over six optimizer steps on the same
batches (the scratch model's dropout masks and augmentation fed to torch too); the residual block
on its own.

Tolerances: float64 1e-10 relative (as the op tests; gradients 1e-9). float32, one forward and
backward: 2e-4 relative (atol 2e-5 for values near 0), since two float32 engines sum in different
orders and torch's batch norm accumulates its statistics in double. float32 over six SGD steps:
losses 1e-4 relative, logits within 1e-4 of their largest magnitude (measured: under 6e-5),
at a rate (SGD, lr 0.01) where no model diverges: at 0.05 vgg-mini's and resnet-mini's losses
climbed to 20-100 within six steps, and there float32 differences grow without bound.

Why not Adam in float32: a 2x2 max-pool window after batch norm can hold two values within float32
rounding of each other, and the engines may pick different ones (both right to float32); Adam's
first steps move each weight by about lr whatever its gradient's size, so one such pick grew into
logits 1e-3 apart after six steps of vgg-mini at batch 16 (found with a float64 torch model).
Why no cutout in float32: a blanked square is constant, so conv, batch norm and ReLU make whole
max-pool windows of equal values, which the engines' 1-ulp differences turn into different picks
(measured: vgg-mini's losses 1e-2 apart by step 3). In float64 the picks agree, and cutout is on.
"""

import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab import scratch
from cnnlab.models import MODELS, basic_block, build_model, scratch_nn
from cnnlab.scratch import nn

# Every registry model at width 1, and the scalable ones at another --width (ModelSpec.base_widths).
CASES = [(name, 1.0) for name in MODELS] + [("vgg-mini", 0.25), ("resnet-mini", 0.5)]
IDS = [name if width == 1 else f"{name}-width{width}" for name, width in CASES]


class RecordedDropout(tnn.Module):
    """torch dropout that applies the mask the scratch layer at the same place drew last."""

    def __init__(self, ours: nn.Dropout):
        super().__init__()
        self.ours = ours

    def forward(self, x):
        if not self.training or self.ours.p == 0:
            return x
        return x * torch.from_numpy(self.ours._cache).to(x.dtype)


def twins(name, dtype, dropout=0.0, seed=0, width=1.0, shape=(1, 28, 28), classes=10):
    """(scratch model, torch model) holding the same weights and randomised batch-norm buffers."""
    torch.manual_seed(seed)
    theirs = build_model(name, shape, classes, "torch", dropout=dropout, width=width).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    state = theirs.state_dict()
    for key, value in state.items():  # non-trivial statistics and affine parameters
        if value.is_floating_point() and "running" in key:
            value.copy_(value + torch.rand_like(value))
        elif value.is_floating_point() and value.ndim == 1 and "bias" not in key:
            # Gains in [0.5, 1.5): above 1 in every layer, seven layers of resnet-mini made SGD
            # diverge within six steps (losses near 40), where float32 differences grow without bound.
            value.copy_(value + torch.rand_like(value) - 0.5)
    ours = build_model(
        name, shape, classes, "numpy", rng=np.random.default_rng(seed), dropout=dropout, width=width
    )
    ours = ours.to(dtype)
    ours.load_state_dict({k: v.numpy() for k, v in state.items()})
    for path, module in list(theirs.named_modules()):
        if isinstance(module, tnn.Dropout):
            parent, _, child = path.rpartition(".")
            setattr(
                theirs.get_submodule(parent) if parent else theirs, child, RecordedDropout(_at(ours, path))
            )
    return ours, theirs


def _at(model, path):
    for part in path.split("."):
        model = model._modules[part]
    return model


@pytest.mark.parametrize("name, width", CASES, ids=IDS)
def test_state_dict_moves_both_ways_unchanged(name, width):
    ours = build_model(name, (1, 28, 28), 10, "numpy", rng=np.random.default_rng(1), width=width)
    theirs = build_model(name, (1, 28, 28), 10, "torch", width=width)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert a.shape == tuple(b.shape) and a.dtype == b.numpy().dtype, key
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})  # ours -> torch
    fresh = build_model(name, (1, 28, 28), 10, "numpy", rng=np.random.default_rng(2), width=width)
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})  # torch -> ours
    for a, b in zip(fresh.state_dict().values(), ours.state_dict().values()):
        np.testing.assert_array_equal(a, b)
    assert sum(p.data.size for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


@pytest.mark.parametrize(
    "dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 2e-4, 2e-5)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name, width", CASES, ids=IDS)
def test_same_logits_and_gradients_as_torch(name, width, training, dtype, rtol, atol):
    ours, theirs = twins(name, dtype, dropout=0.3, width=width)
    ours.train(training), theirs.train(training)
    x = np.random.default_rng(3).standard_normal((6, 1, 28, 28)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    logits, logits_t = ours(x), theirs(xt)
    assert logits.dtype == dtype
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=rtol, atol=atol)
    if training:
        gy = np.random.default_rng(4).standard_normal(logits.shape).astype(dtype)
        logits_t.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), rtol=rtol * 10, atol=atol)
        for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=rtol * 10, atol=atol, err_msg=key)
    for key, value in theirs.state_dict().items():  # running statistics updated alike (in train mode)
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=rtol, atol=atol, err_msg=key)


@pytest.mark.parametrize("name", list(MODELS))
def test_colour_images_of_any_size_and_class_count_match_torch(name):
    """The three-channel case, at a size and class count other than Fashion-MNIST's, in float64:
    the same logits, input and parameter gradients and batch-norm statistics as torch."""
    shape, classes = (3, 16, 20), 7
    ours, theirs = twins(name, np.float64, dropout=0.3, shape=shape, classes=classes)
    x = np.random.default_rng(8).standard_normal((5, *shape))
    xt = torch.tensor(x, requires_grad=True)
    logits, logits_t = ours(x), theirs(xt)
    assert logits.shape == (5, classes)
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = np.random.default_rng(9).standard_normal(logits.shape)
    logits_t.backward(torch.tensor(gy))
    np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (key, p), t in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(
    "dtype, optimizer, cutout, rtol, scale",
    [(np.float64, "Adam", 6, 1e-10, 1e-10), (np.float32, "SGD", 0, 1e-4, 1e-4)],
    ids=["float64-adam", "float32-sgd"],
)
@pytest.mark.parametrize("name, width", CASES, ids=IDS)
def test_same_losses_over_six_steps(name, width, dtype, optimizer, cutout, rtol, scale):
    """Label smoothing, dropout 0.3, translation with reflect padding, flips and (float64) cutout;
    Adam in float64, SGD with momentum in float32 (see the module docstring: Adam turns float32
    near-ties into lr-sized steps, and cutout makes ties)."""
    ours, theirs = twins(name, dtype, dropout=0.3, width=width)
    options = dict(lr=3e-3) if optimizer == "Adam" else dict(lr=0.01, momentum=0.9)
    opt = getattr(scratch.optim, optimizer)(ours.parameters(), **options)
    opt_t = getattr(torch.optim, optimizer)(theirs.parameters(), **options)
    rng, augment_rng = np.random.default_rng(5), np.random.default_rng(6)
    for _ in range(6):
        x = rng.standard_normal((8, 1, 28, 28)).astype(dtype)
        y = rng.integers(0, 10, 8)
        x = scratch.augment.augment(x, augment_rng, 2, True, -1.0, pad_mode="reflect", cutout_size=cutout)
        loss, logits = scratch.train_step(ours, opt, x, y, label_smoothing=0.1)
        opt_t.zero_grad()
        logits_t = theirs(torch.from_numpy(x))
        loss_t = tnn.functional.cross_entropy(logits_t, torch.from_numpy(y), label_smoothing=0.1)
        loss_t.backward()
        opt_t.step()
        np.testing.assert_allclose(loss, loss_t.item(), rtol=rtol)
        expected = logits_t.detach().numpy()
        np.testing.assert_allclose(logits, expected, rtol=0, atol=scale * np.abs(expected).max())
    ours.eval(), theirs.eval()
    x = rng.standard_normal((8, 1, 28, 28)).astype(dtype)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=0, atol=scale * np.abs(expected).max())


class TorchBlock(tnn.Module):
    """The residual block of cnnlab's summary tests (tests/test_summary.py), in torch."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = tnn.Sequential(
            tnn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            tnn.BatchNorm2d(c_out),
            tnn.ReLU(),
            tnn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            tnn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            tnn.Sequential(tnn.Conv2d(c_in, c_out, 1, stride, bias=False), tnn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else tnn.Sequential()
        )
        self.relu = tnn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


@pytest.mark.parametrize("c_in, c_out, stride", [(4, 4, 1), (4, 6, 2), (3, 5, 1)])
def test_residual_block_adds_the_skip_path_as_torch(c_in, c_out, stride):
    rng = np.random.default_rng(7)
    ours, theirs = (
        scratch.nn.fuse_relu(basic_block(scratch_nn(rng), c_in, c_out, stride)).to(np.float64),
        TorchBlock(c_in, c_out, stride),
    )
    theirs = theirs.double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for training in (True, True, False):
        ours.train(training), theirs.train(training)
        x = rng.standard_normal((3, c_in, 7, 6))
        xt = torch.tensor(x, requires_grad=True)
        out, out_t = ours(x), theirs(xt)
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        if training:
            gy = rng.standard_normal(out.shape)
            out_t.backward(torch.tensor(gy))
            np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
            for p, t in zip(ours.parameters(), theirs.parameters()):
                np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)
                t.grad = None
            ours.zero_grad()
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-10, atol=1e-12)


def test_residual_block_without_relu_is_the_plain_sum():
    body = nn.Sequential(nn.Linear(3, 3, rng=0))
    block = nn.ResidualBlock(body, relu=False).to(np.float64)
    x = np.random.default_rng(8).standard_normal((2, 3))
    np.testing.assert_allclose(block(x), body(x) + x)
    gy = np.ones((2, 3))
    body(x)
    np.testing.assert_allclose(block(x) * 0 + block.backward(gy), body.backward(gy) + gy)


def test_every_relu_beside_a_pool_or_batch_norm_is_fused():
    # convnet-bn has a ReLU after each max-pool (they commute) and after its BatchNorm1d.
    model = build_model("convnet-bn", (1, 28, 28), 10, "numpy", rng=np.random.default_rng(0))
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 3 and all(getattr(m, "absorbed", False) for m in relus)


@pytest.mark.parametrize("name, width", CASES, ids=IDS)
def test_fused_relu_changes_nothing_but_speed(name, width):
    """nn.fuse_relu moves each ReLU into the max-pool or batch norm beside it: bit for bit the same
    outputs, gradients and buffers as the model run layer by layer."""
    build = lambda: build_model(
        name, (1, 28, 28), 10, "numpy", rng=np.random.default_rng(9), dropout=0.3, width=width
    )
    fused = build().to(np.float64)
    plain = nn.fuse_relu(build(), enable=False)
    plain = plain.to(np.float64)
    assert any(getattr(m, "absorbed", False) for m in fused.modules())
    assert not any(getattr(m, "absorbed", False) for m in plain.modules())
    x = np.random.default_rng(10).standard_normal((5, 1, 28, 28))
    gy = np.random.default_rng(11).standard_normal((5, 10))
    for model in (fused, plain):
        model[
            next(i for i, m in enumerate(model) if isinstance(m, nn.Dropout))
        ].generator = np.random.default_rng(12)
    np.testing.assert_array_equal(fused(x), plain(x))
    np.testing.assert_array_equal(fused.backward(gy), plain.backward(gy))
    for (key, a), b in zip(fused.named_parameters(), plain.parameters()):
        np.testing.assert_array_equal(a.grad, b.grad, err_msg=key)
    for (key, a), b in zip(fused.state_dict().items(), plain.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    fused.eval(), plain.eval()
    np.testing.assert_array_equal(fused(x), plain(x))

"""Winograd F(2x2, 3x3) (cnnlab.scratch.winograd) against torch and the im2col path, in float64 to
1e-10 and in float32 to a stated tolerance; and the conv2d dispatch that picks it."""

from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_conv2d
from threadpoolctl import threadpool_limits

from cnnlab import shapes
from cnnlab.scratch import functional as F
from cnnlab.scratch import nn, winograd

# (batch, C, K, H, W, (top, bottom, left, right)): odd and even output sizes, batch 1, C = 1,
# padding 0, 1 and uneven, outputs of one row or column.
CASES = [
    (2, 3, 4, 8, 8, (1, 1, 1, 1)),
    (2, 3, 4, 7, 7, (1, 1, 1, 1)),
    (1, 1, 2, 5, 6, (0, 0, 0, 0)),
    (3, 1, 1, 3, 3, (0, 0, 0, 0)),
    (1, 2, 3, 3, 9, (1, 1, 0, 0)),
    (2, 2, 3, 4, 9, (2, 0, 1, 3)),
    (1, 5, 2, 1, 1, (1, 1, 1, 1)),
    (4, 2, 2, 14, 13, (1, 1, 1, 1)),
]


def _im2col_conv(x, w, pads):
    """The im2col path's output on the zero-padded input (C < MIN_CHANNELS: conv2d takes im2col)."""
    top, bottom, left, right = pads
    return F.conv2d(np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), w)


@pytest.mark.parametrize("threads", [1, 2])  # 2: chunks on two Python threads, in waves
@pytest.mark.parametrize("chunk", [winograd.CHUNK_COLUMNS, 1])  # 1: one tile row per chunk
@pytest.mark.parametrize("n, c, k, h, wd, pads", CASES)
def test_forward_and_backward_match_torch_and_im2col_float64(
    n, c, k, h, wd, pads, chunk, threads, monkeypatch
):
    monkeypatch.setattr(winograd, "CHUNK_COLUMNS", chunk)
    with threadpool_limits(threads, user_api="blas"):
        _check_against_torch(n, c, k, h, wd, pads)


def _check_against_torch(n, c, k, h, wd, pads):
    rng = np.random.default_rng(c * 100 + h)
    x, w = rng.standard_normal((n, c, h, wd)), rng.standard_normal((k, c, 3, 3))
    top, bottom, left, right = pads
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = TF.conv2d(TF.pad(xt, (left, right, top, bottom)), wt)
    y, saved = winograd.forward(x, w, pads)
    got = y.transpose(3, 0, 1, 2)  # (K, H_out, W_out, N) -> NCHW
    np.testing.assert_allclose(got, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    if c < winograd.MIN_CHANNELS:  # conv2d itself takes im2col here: the two paths agree
        np.testing.assert_allclose(got, _im2col_conv(x, w, pads), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(gy))
    grad_x, grad_w = winograd.backward(gy, saved, w)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_w, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    grad_x, grad_w2 = winograd.backward(gy, winograd.save_input(x, pads), w, input_grad=False)
    assert grad_x is None
    np.testing.assert_allclose(grad_w2, wt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_matches_torch_within_stated_tolerance():
    """float32, vgg-mini's 64->64 layer at batch 8: outputs and gradients within 1e-5 of the
    largest value (Winograd's transforms add a few roundings; measured about 1e-6)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 14, 14), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) / 24
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TF.conv2d(xt, wt, padding=1)
    y = F.conv2d(x, w, padding=1)
    assert y.dtype == np.float32
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    yt.backward(torch.tensor(gy))
    grads = F.conv2d_backward(gy, x, w, padding=1)
    for got, want in [(y, yt.detach()), (grads[0], xt.grad), (grads[1], wt.grad)]:
        want = want.numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@st.composite
def winograd_configs(draw):
    """conv2d configurations that take the Winograd path: 3x3, stride 1, one group, C >= 16."""
    c_in = draw(st.integers(winograd.MIN_CHANNELS, winograd.MIN_CHANNELS + 4))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.sampled_from(["same", "valid"]),
        )
    )
    pad = (0, 0) if padding == "valid" else (1, 1) if padding == "same" else shapes.pair(padding, "p")
    hw = [draw(st.integers(max(1, 3 - 2 * p), 9)) for p in pad]
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (c_in, *hw) if batch is None else (batch, c_in, *hw)
    c_out = draw(st.integers(1, 4))
    inputs = dict(
        input=rng.standard_normal(shape),
        weight=rng.standard_normal((c_out, c_in, 3, 3)),
        bias=rng.standard_normal(c_out) if draw(st.booleans()) else None,
    )
    return inputs, dict(padding=padding, dilation=draw(st.sampled_from([1, (1, 1)]))), rng


@settings(max_examples=40, deadline=None)
@given(winograd_configs())
def test_conv2d_takes_winograd_and_matches_torch(config):
    inputs, options, rng = config
    forward = mock.patch.object(winograd, "forward", wraps=winograd.forward)
    backward = mock.patch.object(winograd, "backward", wraps=winograd.backward)
    with forward as spy_forward, backward as spy_backward:
        check_conv2d(inputs, options, rng)
    assert spy_forward.called and spy_backward.called  # conv2d and conv2d_backward took Winograd


def test_dispatch_rule():
    geo = dict(stride=(1, 1), dilation=(1, 1), groups=1)
    c = winograd.MIN_CHANNELS
    assert winograd.applies((8, c, 3, 3), geo)
    assert not winograd.applies((8, c - 1, 3, 3), geo)  # too few channels: im2col
    assert not winograd.applies((8, c, 3, 2), geo)
    assert not winograd.applies((8, c, 3, 3), dict(geo, stride=(2, 1)))
    assert not winograd.applies((8, c, 3, 3), dict(geo, dilation=(1, 2)))
    assert not winograd.applies((8, c, 3, 3), dict(geo, groups=2))


def test_layer_over_steps_matches_torch_float64():
    """nn.Conv2d on the Winograd path, two training steps: its workspaces are reused, the
    gradients accumulate and input_grad=False skips the input's gradient."""
    rng = np.random.default_rng(1)
    layer = nn.Conv2d(16, 5, 3, padding=1, bias=False, rng=0, dtype=np.float64)
    wt = torch.tensor(layer.weight.data, requires_grad=True)
    for step, shape in enumerate([(3, 16, 7, 6), (3, 16, 7, 6), (2, 16, 4, 4)]):
        x = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = TF.conv2d(xt, wt, padding=1)
        y = layer(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        gy = rng.standard_normal(y.shape)
        yt.backward(torch.tensor(gy))
        grad_x = layer.backward(gy, input_grad=step != 1)
        if step == 1:
            assert grad_x is None
        else:
            np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.weight.grad, wt.grad.numpy(), rtol=1e-10, atol=1e-12)

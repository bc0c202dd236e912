"""dropout and dropout_backward, and nn.Dropout: torch's scaling, its op for a given mask, the
statistics of the mask, central differences, and reproducible masks from a Generator."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import ATOL, RTOL

from cnnlab.scratch import functional as F
from cnnlab.scratch import nn
from cnnlab.scratch.gradcheck import gradcheck


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=0, max_size=4),
    st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1)),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_dropout_and_backward_match_torchs_op_for_the_same_mask(shape, p, training, seed):
    """torch draws its own masks, so its dropout op is fed ours: aten.native_dropout_backward(g, mask,
    scale) is torch's g * mask * scale, the forward and the backward of dropout alike."""
    x = np.random.default_rng(seed).standard_normal(shape)
    out = F.dropout(x, p, training, np.random.default_rng(seed))
    grad = F.dropout_backward(x * 3, x, p, training, np.random.default_rng(seed))
    if not training or p == 0:
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(grad, x * 3)
        return
    keep = F.dropout_mask(x.shape, p, np.random.default_rng(seed), np.float64) != 0
    scale = 0.0 if p == 1 else 1 / (1 - p)
    op = torch.ops.aten.native_dropout_backward
    expected = op(torch.tensor(x), torch.tensor(keep), scale).numpy()
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, op(torch.tensor(x * 3), torch.tensor(keep), scale), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_dropout_keeps_one_minus_p_and_scales_as_torch(dtype, p):
    x = np.ones((200, 500), dtype=dtype)
    out = F.dropout(x, p, generator=np.random.default_rng(0))
    out_t = TF.dropout(torch.ones(200, 500, dtype=torch.from_numpy(x).dtype), p)
    assert out.dtype == dtype
    assert set(np.unique(out)) == set(np.unique(out_t.numpy()))  # 0 and torch's scale, to the bit
    assert abs((out != 0).mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / x.size)


def test_dropout_central_differences():
    x = np.random.default_rng(1).standard_normal((3, 4))
    gy = np.random.default_rng(2).standard_normal((3, 4))
    forward = lambda x: F.dropout(x, 0.4, generator=np.random.default_rng(7))
    analytic = F.dropout_backward(gy, x, 0.4, generator=np.random.default_rng(7))
    assert gradcheck(forward, [x], [analytic], gy, atol=1e-7)


def test_dropout_layer_masks_come_from_its_generator():
    layer = nn.Dropout(0.5, rng=3)
    x = np.ones((4, 6), np.float32)
    first = layer(x)
    np.testing.assert_array_equal(layer.backward(x * 2), first * 2)  # the same mask
    layer.generator = np.random.default_rng(3)
    np.testing.assert_array_equal(layer(x), first)  # reseeded: the same mask again
    assert not np.array_equal(layer(x), first)  # the next draw differs
    layer.eval()
    assert layer(x) is x or np.array_equal(layer(x), x)
    assert repr(layer) == "Dropout(p=0.5)"


@pytest.mark.parametrize("p", [-0.1, 1.5, None, "0.5"])
def test_bad_probability_raises_like_torch(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(np.zeros(3), p, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)
    with pytest.raises((ValueError, TypeError)):
        TF.dropout(torch.zeros(3), p)
    assert np.array_equal(F.dropout(np.ones(3), True, generator=np.random.default_rng(0)), np.zeros(3))

"""cnnlab.shapes against the shapes torch really produces, and the same refusals."""

import warnings

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.shapes import conv2d_output_shape, conv_transpose2d_output_shape, pool2d_output_shape

sizes = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))
pair = lambda v: v if isinstance(v, tuple) else (v, v)


def agree(ours, theirs):
    """Both give the same (H_out, W_out), or ours raises ValueError exactly when torch refuses.

    NOTE: torch's conv_transpose2d returns an empty tensor where the size works out below 1;
    cnnlab.shapes refuses that too, as a size below 1 is never what a learner meant.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = tuple(theirs().shape[-2:])
        if min(expected) < 1:
            raise RuntimeError(f"empty output {expected}")
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError):
            ours()
        return
    assert ours() == expected


@settings(max_examples=80, deadline=None)
@given(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    sizes(1, 4),
    sizes(1, 3),
    st.one_of(sizes(0, 2), st.sampled_from(["valid", "same"])),
    sizes(1, 2),
)
def test_conv2d_output_shape_matches_torch(hw, kernel, stride, padding, dilation):
    weight = torch.zeros(1, 1, *pair(kernel))
    agree(
        lambda: conv2d_output_shape(hw, kernel, stride, padding, dilation),
        lambda: TF.conv2d(torch.zeros(1, 1, *hw), weight, stride=stride, padding=padding, dilation=dilation),
    )


@settings(max_examples=80, deadline=None)
@given(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    sizes(1, 4),
    st.one_of(st.none(), sizes(1, 3)),
    sizes(0, 2),
    sizes(1, 2),
    st.booleans(),
)
def test_pool2d_output_shape_matches_torch(hw, kernel, stride, padding, dilation, ceil_mode):
    agree(
        lambda: pool2d_output_shape(hw, kernel, stride, padding, dilation, ceil_mode),
        lambda: TF.max_pool2d(torch.zeros(1, 1, *hw), kernel, stride, padding, dilation, ceil_mode),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    sizes(1, 4),
    sizes(1, 3),
    sizes(0, 2),
    sizes(0, 2),
    sizes(1, 2),
)
def test_conv_transpose2d_output_shape_matches_torch(hw, kernel, stride, padding, output_padding, dilation):
    weight = torch.zeros(1, 1, *pair(kernel))
    agree(
        lambda: conv_transpose2d_output_shape(hw, kernel, stride, padding, output_padding, dilation),
        lambda: TF.conv_transpose2d(
            torch.zeros(1, 1, *hw),
            weight,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        ),
    )


def test_the_notebooks_5000():
    """8 feature maps of a 4x4 kernel over 28x28 give 8 * 25 * 25 = 5000 values."""
    h, w = conv2d_output_shape((28, 28), 4)
    assert (h, w) == (25, 25) and 8 * h * w == 5000


def test_the_seed_networks_shapes():
    hw = conv2d_output_shape((28, 28), 3)
    assert hw == (26, 26)
    hw = pool2d_output_shape(hw, 2)
    assert hw == (13, 13)
    assert pool2d_output_shape(conv2d_output_shape(hw, 3), 2) == (5, 5)  # 64 * 5 * 5 = 1600


def test_same_padding_keeps_the_size_even_for_even_kernels():
    assert conv2d_output_shape((7, 8), (4, 2), padding="same", dilation=(1, 3)) == (7, 8)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: conv2d_output_shape((28, 28), 0), "kernel_size=0"),
        (lambda: conv2d_output_shape((28, 28), 3, stride=0), "stride=0"),
        (lambda: conv2d_output_shape((28, 28), 3, dilation=(1, 0)), r"dilation=\(1, 0\)"),
        (lambda: conv2d_output_shape((28, 28), 3, padding=-1), "padding=-1"),
        (lambda: conv2d_output_shape((28, 28), 3, padding="full"), "padding='full'"),
        (lambda: conv2d_output_shape((28, 28), 3, stride=2, padding="same"), "stride=2"),
        (lambda: conv2d_output_shape((2, 28), 3), "kernel_size=3"),
        (lambda: conv2d_output_shape((0, 28), 3), r"input_hw=\(0, 28\)"),
        (lambda: conv2d_output_shape(28, 3), "input_hw=28"),
        (lambda: conv2d_output_shape((28, 28), 2.5), "kernel_size=2.5"),
        (lambda: conv2d_output_shape((28, 28), (3, 3, 3)), r"kernel_size=\(3, 3, 3\)"),
        (lambda: pool2d_output_shape((28, 28), 2, padding=2), "padding=2"),
        (lambda: pool2d_output_shape((28, 28), 2, padding="same"), "padding='same'"),
        (lambda: pool2d_output_shape((1, 1), 3, padding=1, dilation=2), "output size is too small"),
        (lambda: conv_transpose2d_output_shape((5, 5), 3, stride=2, output_padding=2), "output_padding=2"),
        (lambda: conv_transpose2d_output_shape((1, 1), 1, padding=1), "output size is too small"),
    ],
)
def test_bad_arguments_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()

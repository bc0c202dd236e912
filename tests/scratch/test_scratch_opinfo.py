"""torch's own OpInfo sample inputs for the ops the scratch engine has, run through both.

The configurations are transcribed from torch 2.13's
``torch/testing/_internal/common_methods_invocations.py`` (``sample_inputs_avgpool2d``,
``_TestParamsMaxPool2d`` and the one-element arguments of ``_TestParamsMaxPool1d``,
``sample_inputs_conv2d``, ``sample_inputs_adaptive_{avg,max}_pool2d``, ``sample_inputs_batch_norm``);
importing that module needs torch's test dependencies. Each sample must give torch's output and
gradients, or, where torch refuses it, be refused too: arguments as one-element tuples such as
``padding=(1,)``, an empty stride, a negative ``divisor_override``, a negative momentum.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check_conv2d, check_op

from cnnlab.scratch import functional as F

AVG_POOL2D = [  # input shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((1, 3, 9, 9), 3, 1, 1, True, False, 2),
    ((1, 3, 9, 9), (4, 4), (2, 3), 1, True, False, 2),
    ((1, 3, 9, 9), (6, 6), (3, 3), (2, 3), True, True, 2),
    ((2, 3, 9, 9), (3, 3), (1, 1), (1,), True, False, 2),
    ((1, 1, 4, 4), (2, 2), (), (0,), False, True, -2),
    ((1, 2, 6, 6), (4, 4), (2, 2), (2,), True, True, None),
    ((1, 3, 9, 9), (3, 3), None, 0, False, True, None),
]


@pytest.mark.parametrize("shape, kernel, stride, padding, ceil, include, divisor", AVG_POOL2D)
def test_avg_pool2d_opinfo_samples(shape, kernel, stride, padding, ceil, include, divisor):
    args = (kernel, stride, padding, ceil, include, divisor)
    check_op(
        lambda input: F.avg_pool2d(input, *args),
        lambda g, input: F.avg_pool2d_backward(g, input, *args),
        lambda input: TF.avg_pool2d(input, *args),
        dict(input=np.random.default_rng(0).standard_normal(shape)),
        grad_names=("input",),
    )


def max_pool2d_options():
    """_TestParamsMaxPool2d's options, then _TestParamsMaxPool1d's one-element tuples in 2-D."""
    two = dict(
        kernel_size=[3, (3, 2)],
        stride=[2, None, (2, 1)],
        ceil_mode=[True, False],
        padding=[0, 1, (1, 1)],
        dilation=[1, (1, 2)],
    )
    one = dict(
        kernel_size=[(3,)], stride=[(2,), None], ceil_mode=[True, False], padding=[0, (1,)], dilation=[(1,)]
    )
    for options in (two, one):
        for values in itertools.product(*options.values()):
            yield dict(zip(options, values))


def both_or_neither(ours, theirs):
    """torch's result, or the exception torch raised after checking that ours refuses it too."""
    try:
        return theirs()
    except (RuntimeError, ValueError) as exc:
        with pytest.raises(ValueError):
            ours()
        return exc


def check_max_pool2d(x, options):
    """torch's refusal, or its output, gradient and indices."""
    refused = both_or_neither(
        lambda: F.max_pool2d(x, **options), lambda: TF.max_pool2d(torch.tensor(x), **options)
    )
    if isinstance(refused, Exception):
        return
    check_op(
        lambda input: F.max_pool2d(input, **options),
        lambda g, input: F.max_pool2d_backward(g, input, **options),
        lambda input: TF.max_pool2d(input, **options),
        dict(input=x),
        grad_names=("input",),
    )
    _, indices = F.max_pool2d(x, **options, return_indices=True)
    expected = TF.max_pool2d(torch.tensor(x), **options, return_indices=True)[1]
    np.testing.assert_array_equal(indices, expected, err_msg=str(options))


@pytest.mark.parametrize(
    "shape", [(1, 2, 3, 6), (1, 2, 6, 6), (2, 2, 3, 6), (2, 2, 6, 6), (2, 3, 6), (2, 6, 6)]
)
def test_max_pool2d_opinfo_samples(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    for options in max_pool2d_options():
        check_max_pool2d(x, options)


CONV2D = [  # input, weight, bias shapes and options; each also run unbatched
    ((1, 3, 4, 4), (3, 3, 3, 3), (3,), dict(stride=(2, 2), padding=2, groups=1)),
    ((2, 4, 8, 8), (2, 2, 3, 3), (2,), dict(stride=(3, 2), padding=(2, 1), groups=2, dilation=(4, 4))),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), dict(stride=2, padding=1, groups=1, dilation=(2, 3))),
    ((1, 2, 4, 3), (4, 2, 3, 4), None, dict(stride=2, padding=1, groups=1)),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), dict(stride=2, padding="valid")),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), dict(stride=1, padding="same", dilation=3)),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), dict(groups=4)),
    ((2, 4, 6, 6), (8, 1, 3, 3), (8,), dict(groups=4)),
    ((2, 4, 6, 6), (8, 1, 3, 3), None, dict(groups=4)),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), dict(groups=4, stride=(3, 2))),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), dict(groups=4, padding=(1, 1))),
    ((2, 4, 5, 5), (4, 1, 2, 2), (4,), dict(groups=4, dilation=(2, 2))),
    ((2, 4, 6, 5), (6, 2, 3, 2), (6,), dict(groups=2)),
    ((1, 4, 5, 5), (3, 4, 3, 3), None, dict()),
    ((2, 3, 6, 6), (4, 3, 3, 3), None, dict(stride=(2,), padding=(1,), dilation=(1,))),  # one-element
    ((2, 3, 6, 6), (4, 3, 3, 3), (4,), dict(stride=[1, 2], padding=[1])),  # lists
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("shape, weight, bias, options", CONV2D)
def test_conv2d_opinfo_samples(shape, weight, bias, options, batched):
    rng = np.random.default_rng(2)
    inputs = dict(
        input=rng.standard_normal(shape if batched else shape[1:]),
        weight=rng.standard_normal(weight),
        bias=None if bias is None else rng.standard_normal(bias),
    )
    check_conv2d(inputs, options, rng)


ADAPTIVE = [  # (op name, input shape, output size)
    *[
        ("avg", s, o)
        for s, o in [((1, 8, 8, 8), (5, 7)), ((2, 8, 8, 8), (None, 7)), ((1, 8, 4, 3), (5, None))]
    ],
    *[("avg", s, o) for s, o in [((1, 8, 4, 3), (None, None)), ((1, 8, 4, 3), 5)]],
    *[("max", s, o) for s, o in [((1, 4, 4, 4), (2, 3)), ((2, 4, 4, 4), (None, 3)), ((2, 4, 4, 4), (1, 1))]],
    *[("max", s, o) for s, o in [((1, 4, 4, 3), (3, None)), ((1, 4, 4, 3), (None, None)), ((1, 4, 4, 3), 3)]],
]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("op, shape, size", ADAPTIVE)
def test_adaptive_pool2d_opinfo_samples(op, shape, size, batched):
    name = f"adaptive_{op}_pool2d"
    ours, backward, theirs = getattr(F, name), getattr(F, name + "_backward"), getattr(TF, name)
    x = np.random.default_rng(3).standard_normal(shape if batched else shape[1:])
    check_op(
        lambda input: ours(input, size),
        lambda g, input: backward(g, input, size),
        lambda input: theirs(input, size),
        dict(input=x),
        grad_names=("input",),
    )


BATCH_NORM = [  # input shape, options
    ((5, 5, 5), dict(training=True, momentum=0.5, eps=0.6)),
    ((3, 2, 4), dict(training=False, momentum=-1.2)),
    ((3, 1), dict(training=True, momentum=0.0)),
    ((3, 2, 3, 4), dict(training=True, momentum=-1.0, eps=0.5)),
    ((3, 2, 3, 4), dict(training=False, momentum=-1.0, eps=0.5)),
    ((2, 1), dict()),
]


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, options", BATCH_NORM)
def test_batch_norm_opinfo_samples(shape, options, affine):
    rng = np.random.default_rng(4)
    c = shape[1]
    inputs = dict(
        input=rng.standard_normal(shape),
        running_mean=rng.random(c),
        running_var=rng.random(c),
        weight=rng.standard_normal(c) if affine else None,
        bias=rng.standard_normal(c) if affine else None,
    )
    check_op(
        lambda **a: F.batch_norm(**a, **options),
        lambda g, **a: F.batch_norm_backward(g, **a, **options),
        lambda **t: TF.batch_norm(**t, **options),
        inputs,
        grad_names=("input", "weight", "bias"),
        rng=rng,
    )

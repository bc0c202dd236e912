"""``cnnlab summary``: shapes from the arithmetic against torch's real forward pass, parameters
against sum(p.numel()), multiply-adds against a count made independently with forward hooks."""

import math

import pytest
import torch
from torch import nn

from cnnlab.cli import main
from cnnlab.inspect.describe import DescribeError, Residual, describe
from cnnlab.inspect.summary import format_table, summarize
from cnnlab.models import MODELS, build_model


def hooked_forward(model: nn.Module, input_shape, batch=2):
    """{module path: (output shape without the batch, multiply-adds per image)} from a real forward."""
    found = {}

    def hook(name):
        def record(module, inputs, output):
            out = output.shape[1:]
            if isinstance(module, nn.Conv2d):  # each output value: one weight slice's worth
                macs = output[0].numel() * module.weight[0].numel()
            elif isinstance(module, nn.Linear):
                macs = output[0].numel() * module.in_features
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):  # a scale and shift per value
                macs = output[0].numel()
            else:
                macs = 0
            found[name] = (tuple(out), macs)

        return record

    for name, module in model.named_modules():
        if not list(module.children()) and not isinstance(module, nn.Sequential):
            module.register_forward_hook(hook(name))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(batch, *input_shape))
    return found


class Block(nn.Module):
    """A residual block that describes itself, as later registry models will."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Sequential()
        )
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))

    def summary_layers(self, prefix):
        return [
            Residual(
                prefix + "add",
                describe(self.body, prefix + "body."),
                describe(self.shortcut, prefix + "shortcut."),
            ),
            *describe(self.relu, prefix + "relu."),
        ]


def odd_model():
    """Stride, padding, 'same', dilation, groups, ceil mode, avg pool, adaptive pool, residual blocks."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding="same", dilation=2, groups=4),
        nn.Dropout2d(0.1),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        Block(16, 16, 1),
        Block(16, 32, 2),
        nn.AvgPool2d(2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


@pytest.mark.parametrize("name", [*MODELS, "odd"])
def test_shapes_params_and_mult_adds_match_torch(name):
    model = odd_model() if name == "odd" else build_model(name, (1, 28, 28), 10)
    shape = (1, 28, 28)
    summary = summarize(model, shape, batch_size=3)
    assert summary.failed is None
    real = hooked_forward(model, shape)
    rows = {r.name: r for r in summary.rows if r.kind != "Add"}
    assert set(rows) - {"input"} == set(real)
    for name_, (out_shape, macs) in real.items():
        assert rows[name_].shape == out_shape, name_
        assert rows[name_].mult_adds == macs, name_
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert summary.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert summary.mult_adds == 3 * sum(m for _, m in real.values())
    assert summary.activation_bytes == 3 * 4 * sum(math.prod(s) for s, _ in real.values()) + 3 * 4 * sum(
        math.prod(r.shape) for r in summary.rows if r.kind == "Add"
    )


def test_seed_table_is_the_notebooks(capsys):
    assert main(["summary", "seed"]) == 0
    out = capsys.readouterr().out
    for line in (
        "0      Conv2d 1->32, 3x3   (32, 26, 26)      320    194,688  3x3",
        "2      MaxPool2d 2x2       (32, 13, 13)        0          0  4x4",
        "3      Conv2d 32->64, 3x3  (64, 11, 11)   18,496  2,230,272  8x8",
        "5      MaxPool2d 2x2       (64, 5, 5)          0          0  10x10",
        "6      Flatten             1600                0          0  10x10",
        "7      Linear 1600->128    128           204,928    204,800  all",
    ):
        assert line in out
    assert "parameters:            225,034" in out
    assert "trainable parameters:  225,034" in out


def test_frozen_parameters_are_not_trainable():
    model = build_model("convnet", (1, 28, 28), 10)
    model[0].weight.requires_grad_(False)
    summary = summarize(model)
    assert summary.params - summary.trainable == 288


@pytest.mark.parametrize(
    "shape, layer, why",
    [
        ("1,20,20", "7 (Linear)", "expects 1,600 input features but gets 576, the flattened (64, 3, 3)"),
        ("1,5,5", "3 (Conv2d)", "larger than the padded input"),
        ("3,28,28", "0 (Conv2d)", "expects 1 input channel but gets 3"),
    ],
)
def test_input_that_does_not_fit_prints_the_table_so_far_and_exits_2(capsys, shape, layer, why):
    assert main(["summary", "convnet", "--input-shape", shape]) == 2
    captured = capsys.readouterr()
    assert f"does not fit layer {layer}: " in captured.out and why in captured.out
    assert "does not fit" in captured.out.splitlines()[-3]  # the failing row ends the table
    assert "parameters:" not in captured.out
    assert captured.err.count("\n") == 1 and layer.split()[0] in captured.err


def test_residual_shortcut_that_does_not_match_is_named():
    block = Block(8, 16, 2)
    block.shortcut = nn.Sequential()  # identity: (8, 14, 14) cannot add to (16, 7, 7)
    summary = summarize(nn.Sequential(nn.Conv2d(1, 8, 1), block), (1, 14, 14))
    assert summary.failed.name == "1.add"
    assert "main path gives (16, 7, 7) but the shortcut gives (8, 14, 14)" in format_table(summary)


def test_module_that_cannot_describe_itself_is_refused():
    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)

    with pytest.raises(DescribeError, match=r"module 1 \(Opaque\) has sub-modules but no summary_layers"):
        summarize(nn.Sequential(nn.ReLU(), Opaque()))
    with pytest.raises(DescribeError, match="type Upsample"):
        summarize(nn.Sequential(nn.Upsample(scale_factor=2)))


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec.numpy])
def test_both_backends_give_the_same_table(name):
    torch_table = format_table(summarize(build_model(name, (1, 28, 28), 10, "torch"), batch_size=7))
    numpy_table = format_table(summarize(build_model(name, (1, 28, 28), 10, "numpy"), batch_size=7))
    assert numpy_table == torch_table


@pytest.mark.parametrize("width", ["1", "0.5"])
def test_summary_of_resnet_mini_is_the_same_from_either_backend(width, capsys):
    """`cnnlab summary resnet-mini --backend numpy` walks the scratch residual blocks (body, the add,
    the ReLU after it) as the torch table does; only the title names the backend."""
    tables = {}
    for backend in ("torch", "numpy"):
        assert main(["summary", "resnet-mini", "--backend", backend, "--width", width]) == 0
        tables[backend] = capsys.readouterr().out
    assert "(numpy backend)" in tables["numpy"].splitlines()[0]
    assert tables["numpy"].replace("(numpy backend)", "(torch backend)") == tables["torch"]
    assert "12.add" in tables["numpy"] and "12.body.4" in tables["numpy"]


def test_bad_options_exit_2(capsys):
    assert main(["summary", "nosuchmodel"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["summary", "seed", "--batch-size", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["summary", "seed", "--input-shape", "28,28"])
    assert exc.value.code == 2

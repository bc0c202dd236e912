"""``cnnlab convolve``: the notebook's example, three implementations that agree, the explanation
of every value, the animation, and one clear line for bad input."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.inspect.convolve import explain, make_example, run


def test_default_is_the_notebooks_example(capsys):
    assert main(["convolve", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "output (2, 2):\n  [ 0  -6]\n  [ 6   6]" in out
    assert "y[0, 0] = (-2)(1) + (-2)(0) + (4)(0) + (2)(1) = 0" in out
    assert "y[1, 1] = (2)(1) + (-4)(0) + (2)(0) + (4)(1) = 6" in out
    assert "conv2d_reference, scratch conv2d and torch agree" in out


@pytest.mark.parametrize("seed", range(6))
def test_three_implementations_agree_on_random_examples(seed):
    rng = np.random.default_rng(seed)
    c, o = rng.integers(1, 3, size=2)
    k, s, d, p = rng.integers(1, 4), rng.integers(1, 3), rng.integers(1, 3), rng.integers(0, 2)
    size = d * (k - 1) + 1 + rng.integers(0, 4)
    example = make_example(
        rng.normal(size=(c, size, size + 1)), rng.normal(size=(o, c, k, k)), rng.normal(size=o), s, p, d
    )
    result = run(example)
    assert result.agree and result.reference.shape == (o, *example.out_hw)
    for line, value in zip(explain(example, result.reference), result.reference.ravel()):
        products = line.split(" = ")[1]
        total = sum(eval(term.replace(")(", ")*(").replace(" bias", "")) for term in products.split(" + "))
        assert total == pytest.approx(value, abs=2e-2)  # the printed factors have 4 significant digits


def test_padding_stride_dilation_and_bias(capsys):
    args = [
        "convolve",
        "--input",
        "[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]",
        "--kernel",
        "[[1,0],[0,-1]]",
        "--padding",
        "1",
        "--stride",
        "2",
        "--dilation",
        "2",
        "--bias",
        "0.5",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "padded with zeros (top 1, bottom 1, left 1, right 1)" in out
    assert "output (2, 2):\n  [ -5.5   -7.5]\n  [-13.5   -9.5]" in out  # y[0, 0] = 0*1 + 6*(-1) + 0.5
    assert "conv2d_reference, scratch conv2d and torch agree" in out


@pytest.mark.parametrize("which", ["scratch", "torch"])
def test_exit_1_when_the_implementations_disagree(which, monkeypatch, capsys):
    """`cnnlab convolve` promises exit 1 if the three ever disagree: one of them is made off by 1e-6."""
    import torch.nn.functional as F

    from cnnlab.scratch import functional

    module, name = (functional, "conv2d") if which == "scratch" else (F, "conv2d")
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args: real(*args) + 1e-6)
    assert main(["convolve"]) == 1
    out = capsys.readouterr().out
    assert "output (2, 2):\n  [ 0  -6]\n  [ 6   6]" in out  # the reference's result, still shown
    assert "conv2d_reference, scratch conv2d and torch DISAGREE (largest difference 1.0e-06)" in out


def test_animation_has_one_frame_per_output_value(tmp_path, capsys):
    gif = tmp_path / "conv.gif"
    assert main(["convolve", "--padding", "1", "--animate", str(gif)]) == 0
    assert f"animation: {gif} (16 frames)" in capsys.readouterr().out
    with Image.open(gif) as image:
        assert image.n_frames == 16 and image.size[0] > 300


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "[[1,2],[3"], "--input is not valid JSON"),
        (["--input", "[[1,2],[3]]"], "--input must be a rectangular nested list of numbers"),
        (["--input", "[1,2,3]"], "--input must be a non-empty 2-D or 3-D list"),
        (["--kernel", "[[[1]],[[2]]]"], "the kernel has 2 input channel(s) but the input has 1"),
        (["--kernel", "[[1,1,1,1]]"], "larger than the padded input"),
        (["--stride", "2", "--padding", "same"], "padding='same' is not supported for strided convolutions"),
        (["--bias", "[1,2]"], "bias must be one number or one per output channel (1)"),
        (["--input", "[[0.5]]", "--kernel", "[[NaN]]"], "--kernel must hold finite numbers"),
        (
            ["--input", "[[1]]", "--kernel", "[[1]]", "--animate", "/nonexistent/dir/x.gif"],
            "cannot write --animate",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert main(["convolve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and message in err and err.count("\n") == 1


def test_animation_refuses_what_it_cannot_draw(tmp_path, capsys):
    big = str([[0] * 20] * 20)
    assert main(["convolve", "--input", big, "--kernel", "[[1]]", "--animate", str(tmp_path / "x.gif")]) == 2
    assert "at most 14x14" in capsys.readouterr().err

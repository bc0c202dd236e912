"""The speed recipes' pieces: reflect padding, cutout, shifted test-time augmentation, --width and
the residual model, each against a plain reimplementation or torch's own arithmetic."""

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import FASHION_MNIST
from cnnlab.errors import ConfigError
from cnnlab.models import build_model, class_probabilities, shift_images, tta_shifts
from cnnlab.training.augment import random_cutout, random_translate
from cnnlab.training.config import TrainConfig

BACKGROUND = -1.0  # Fashion-MNIST's black, normalised

FASHION = FASHION_MNIST.dataset


def _images(n=16, h=6, w=6):
    return torch.arange(n * h * w, dtype=torch.float32).reshape(n, 1, h, w)


def test_reflect_translate_is_a_crop_of_the_reflect_padded_image():
    x = _images()
    out = random_translate(x, 2, torch.Generator().manual_seed(0), mode="reflect")
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    assert not (out == BACKGROUND).any()  # nothing black shifted in
    shifts = set()
    for i in range(len(x)):
        crops = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(padded[i, :, dy : dy + 6, dx : dx + 6], out[i].numpy())
        ]
        assert len(crops) == 1, f"image {i} is not one reflect-padded crop"
        shifts.add(crops[0])
    assert len(shifts) > 3  # each image draws its own shift


def _square_of(image: torch.Tensor, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.nonzero(image[0] == fill, as_tuple=True)
    return rows, cols


def test_cutout_blanks_one_clipped_square_per_image_and_keeps_the_rest():
    x = _images(200, 12, 12) + 1  # no pixel is 0 before the cutout
    out = random_cutout(x, 4, torch.Generator().manual_seed(3))
    centres = set()
    for i in range(len(x)):
        rows, cols = _square_of(out[i], 0.0)
        assert len(rows) > 0, f"image {i} has no square"
        top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        height, width = int(bottom - top + 1), int(right - left + 1)
        assert len(rows) == height * width  # a filled rectangle...
        assert height <= 4 and width <= 4  # ...of at most 4x4, smaller only where the border clips it
        assert (height == 4 or top == 0 or bottom == 11) and (width == 4 or left == 0 or right == 11)
        kept = out[i] != 0
        assert torch.equal(out[i][kept], x[i][kept])
        centres.add((int(top), int(left)))
    assert len(centres) > 50  # the squares land all over the image


def test_cutout_is_seeded_and_zero_is_off():
    x = _images(8, 10, 10) + 1
    a = random_cutout(x, 5, torch.Generator().manual_seed(1))
    assert torch.equal(a, random_cutout(x, 5, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, random_cutout(x, 5, torch.Generator().manual_seed(2)))
    assert random_cutout(x, 0, torch.Generator()) is x


@pytest.mark.parametrize("dy, dx", [(1, 1), (-1, -1), (2, -1), (0, 0)])
def test_shift_images_moves_content_and_fills_the_background(dy, dx):
    x = _images(2, 5, 5)
    out = shift_images(x, dy, dx, BACKGROUND)
    for i in range(5):
        for j in range(5):
            src_i, src_j = i - dy, j - dx
            expected = x[..., src_i, src_j] if 0 <= src_i < 5 and 0 <= src_j < 5 else torch.full((2, 1), -1.0)
            assert torch.equal(out[..., i, j], expected)


def test_shifted_tta_is_the_weighted_mean_over_its_views():
    torch.manual_seed(0)
    model = build_model("convnet", (1, 28, 28), 10).eval()
    x = torch.randn(5, 1, 28, 28)
    weights = dict(tta_shifts(1))
    assert sum(weights.values()) == pytest.approx(1.0) and weights[(0, 0)] == 0.5
    with torch.no_grad():

        def both(v):
            return (model(v).softmax(1) + model(v.flip(-1)).softmax(1)) / 2

        expected = sum(w * both(shift_images(x, dy, dx, BACKGROUND)) for (dy, dx), w in weights.items())
        got = class_probabilities(model, x, BACKGROUND, tta=True, tta_shift=1)
        assert torch.allclose(got, expected, atol=1e-6)
        assert torch.allclose(got.sum(1), torch.ones(5))
        assert not torch.allclose(got, class_probabilities(model, x, BACKGROUND, tta=True), atol=1e-4)
        assert torch.equal(
            class_probabilities(model, x, BACKGROUND, tta=False, tta_shift=0), model(x).softmax(1)
        )


def test_width_multiplies_every_conv_of_vgg_mini_and_resnet_mini():
    for name in ("vgg-mini", "resnet-mini"):
        base = [
            m.out_channels
            for m in build_model(name, (1, 28, 28), 10).modules()
            if isinstance(m, torch.nn.Conv2d)
        ]
        wide = [
            m.out_channels
            for m in build_model(name, (1, 28, 28), 10, width=2).modules()
            if isinstance(m, torch.nn.Conv2d)
        ]
        assert wide == [2 * c for c in base]
        assert build_model(name, (1, 28, 28), 10, width=2)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_width_is_refused_for_the_fixed_models_and_out_of_range():
    with pytest.raises(ConfigError, match="--width applies to vgg-mini, resnet-mini only"):
        TrainConfig(model="convnet", width=2)
    for bad in (0, -1, 17, float("nan")):
        with pytest.raises(ConfigError, match="--width"):
            TrainConfig(model="vgg-mini", width=bad)
    assert TrainConfig(model="convnet", width=1).width == 1


def test_resnet_mini_adds_the_skip_path():
    """With the residual body's last batch norm at scale 0, each block is relu(x) = x (x >= 0 after
    the ReLU before it): the network then equals itself with the blocks removed."""
    torch.manual_seed(0)
    model = build_model("resnet-mini", (1, 28, 28), 10).eval()
    for index in (7, 12):
        torch.nn.init.zeros_(model[index].body[4].weight)
        torch.nn.init.zeros_(model[index].body[4].bias)
    without_blocks = torch.nn.Sequential(*(m for i, m in enumerate(model) if i not in (7, 12)))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), without_blocks(x), atol=1e-6)
        model[7].body[4].bias.fill_(1.0)  # now the body adds 1 to every value before the ReLU
        assert not torch.allclose(model(x), without_blocks(x), atol=1e-3)


def test_cli_trains_the_recipe_options_and_records_them(synthetic_dir, tmp_path):
    import json

    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--train-size", "200"]
    args += ["--valid-size", "100", "--epochs", "1", "--quiet", "--model", "resnet-mini", "--width", "0.5"]
    args += ["--pad-mode", "reflect", "--translate", "2", "--cutout", "6", "--tta-shift", "1", "--whiten"]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["whiten"] is True
    assert (config["width"], config["pad_mode"], config["cutout"], config["tta_shift"]) == (
        0.5,
        "reflect",
        6,
        1,
    )
    assert main(["evaluate", str(run)]) == 0  # the loader rebuilds it at width 0.5


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--cutout", "29", "--cutout must be at most 28 pixels for the 28x28 images of fashion-mnist"),
        ("--tta-shift", "-1", "--tta-shift must be between 0 and 4"),
        ("--width", "0", "--width must be a number in (0, 16]"),
    ],
)
def test_bad_recipe_options_get_one_line_and_exit_2(capsys, option, value, message):
    assert main(["train", option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_unknown_pad_mode_is_an_argparse_choice_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--pad-mode", "wrap"])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--pad-mode: invalid choice: 'wrap'" in last


def test_explore_walks_resnet_mini_through_its_skips():
    """`cnnlab explore`'s forward pass recomputes each Add from its two inputs and checks that the
    last step gives the model's own logits (Network._check raises otherwise)."""
    from cnnlab.inspect.explorer.network import Network

    torch.manual_seed(0)
    network = Network(build_model("resnet-mini", (1, 28, 28), 10, width=0.25), FASHION)
    adds = [s for s in network.steps if s.kind == "Add"]
    assert [s.name for s in adds] == ["7.add", "12.add"]
    forward = network.run(np.full((28, 28), 128, np.uint8))
    block_input = forward.outputs[adds[0].sources[1]]  # the identity shortcut: the block's input
    assert np.allclose(forward.outputs[adds[0].index], forward.outputs[adds[0].sources[0]] + block_input)


def test_a_presets_width_stays_with_its_model():
    """--preset fast-gpu --model convnet trains convnet (the preset's width is for resnet-mini); an
    explicit --width on a fixed model is still refused."""
    from cnnlab.training.config import resolve

    assert resolve({"preset": "fast-gpu", "model": "convnet"}).width == 1
    assert resolve({"preset": "fast-gpu", "model": "vgg-mini"}).width == 2
    with pytest.raises(ConfigError, match="--width applies to"):
        resolve({"preset": "fast-gpu", "model": "convnet", "width": 2})

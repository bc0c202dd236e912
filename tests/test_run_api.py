"""``Run``: safe to change (evaluate and predict keep the saved weights, in eval mode), ``predict`` and
``prepare`` for every form an image comes in, the pictures as methods, and the card."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.report.figures import png_bytes

SMALL = dict(train_size=300, valid_size=100, batch_size=50, lr=0.01, precision="32", quiet=True)


@pytest.fixture(scope="module")
def bn_run(synthetic_dir, tmp_path_factory):
    """A batch-norm model (one image in training mode is an error for it), float32."""
    out = tmp_path_factory.mktemp("bn") / "run"
    return cnnlab.train("convnet-pool-bn", epochs=1, data_dir=str(synthetic_dir), out=str(out), **SMALL)


@pytest.fixture(scope="module")
def images(synthetic_dir):
    # (N, H, W): Fashion-MNIST as its files hold it
    return cnnlab.load_data(str(synthetic_dir)).test_images[:4, 0]


def test_changing_run_model_changes_nothing_the_run_reports(bn_run, images):
    import torch

    accuracy = bn_run.evaluate()["accuracy"]
    probabilities = bn_run.predict(images).probabilities
    assert accuracy == pytest.approx(bn_run.summary["test_accuracy"], abs=1e-12)
    bn_run.model.train()
    with torch.no_grad():
        for parameter in bn_run.model.parameters():
            parameter.mul_(0)
    fresh = cnnlab.load_run(bn_run.path)  # evaluated anew, not from a cache
    fresh.model.train()
    assert fresh.evaluate()["accuracy"] == accuracy
    np.testing.assert_array_equal(fresh.predict(images).probabilities, probabilities)
    assert fresh.predict(images[0]).probabilities.shape == (1, 10)  # one image, batch norm in eval mode
    assert bn_run.predict(images[:1]).probabilities[0] == pytest.approx(probabilities[0])


def test_predict_takes_every_layout_and_gives_one_answer(bn_run, images):
    import torch

    flat = bn_run.predict(images)
    assert flat.probabilities.shape == (4, 10) and np.allclose(flat.probabilities.sum(1), 1, atol=1e-5)
    assert flat.inputs.shape == (4, 1, 28, 28) and flat.inputs.dtype == np.uint8
    np.testing.assert_array_equal(flat.inputs[:, 0], images)  # Fashion-MNIST's form is taken as it is
    assert flat.inverted == [False] * 4 and flat.classes == [bn_run.class_names[k] for k in flat.labels]
    assert [t[0]["class"] for t in flat.top] == flat.classes and len(flat.top[0]) == 3
    assert flat[1] == {"image": "image 1", "top": flat.top[1], "inverted": False} and len(flat) == 4
    same = [
        images[:, None],  # (N, 1, H, W)
        images[..., None],  # (N, H, W, 1)
        torch.from_numpy(images),
        list(images),
        [Image.fromarray(i) for i in images],
        images.astype(np.float64),
    ]
    for batch in same:
        np.testing.assert_allclose(bn_run.predict(batch).probabilities, flat.probabilities, atol=1e-6)
    np.testing.assert_allclose(bn_run.predict(images[2]).probabilities, flat.probabilities[2:3], atol=1e-6)


def test_predict_prepares_photos_rgb_arrays_and_other_sizes(bn_run, images, tmp_path):
    photo = np.full((64, 48, 3), 240, np.uint8)  # a dark item on light paper, in colour
    photo[16:48, 12:36] = (60, 20, 20)
    path = tmp_path / "shirt.png"
    Image.fromarray(photo).save(path)
    result = bn_run.predict([photo, path, Image.fromarray(photo), np.moveaxis(photo, -1, 0)])
    assert result.inverted == [True] * 4 and result.names[1] == str(path)
    assert result.inputs.shape == (4, 1, 28, 28)
    for other in result.inputs[1:]:
        np.testing.assert_array_equal(other, result.inputs[0])  # every form, one preparation
    assert result.inputs[0].max() == 255 and result.inputs[0][0, 0, 0] == 0  # light item on black
    bigger = np.kron(images[:2], np.ones((2, 2), np.uint8))  # (2, 56, 56): resized, not refused
    assert bn_run.predict(bigger).inputs.shape == (2, 1, 28, 28)
    assert bn_run.predict(images[0], invert=True).inputs[0, 0, 0, 0] == 255 - images[0][0, 0]


def test_prepare_shows_what_the_model_sees(bn_run, images):
    prepared = bn_run.prepare(images[0])
    np.testing.assert_array_equal(np.asarray(prepared), images[0][None])
    assert prepared.inverted is False and prepared._repr_png_().startswith(b"\x89PNG")
    title = prepared.plot().axes[0].get_title()
    assert "what the model sees" in title and "28x28, as given" in title
    assert bn_run.input_shape == (1, 28, 28) and bn_run.class_names == tuple(cnnlab.CLASS_NAMES)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([["a"]]), "must hold numbers"),
        (np.zeros((28, 28), complex), "must hold numbers"),
        (np.full((28, 28), -1.0), "from 0 to 255"),
        (np.zeros((28, 0)), "must be an image of shape"),
        ([], "images is empty"),
        (np.zeros((0, 28, 28)), "images is empty"),
    ],
)
def test_predict_refuses_what_is_no_image_in_one_line(bn_run, bad, message):
    with pytest.raises(cnnlab.ConfigError, match=message):
        bn_run.predict(bad)


def test_prepare_refuses_a_bad_invert(bn_run, images):
    with pytest.raises(cnnlab.ConfigError, match="invert must be True, False or None"):
        bn_run.prepare(images[0], invert="yes")


def test_the_pictures_are_figures_the_commands_draw_too(bn_run, synthetic_dir, tmp_path, capsys):
    assert (
        bn_run.plot_confusion().axes[0].get_title().endswith(f"accuracy {bn_run.evaluate()['accuracy']:.2%}")
    )
    assert (
        "Most confident mistakes on the valid split"
        in bn_run.plot_mistakes(5, split="valid")._suptitle.get_text()
    )
    figures = bn_run.show_features(3, data_dir=str(synthetic_dir))
    features = [png_bytes(f) for f in figures]  # drawn once, as a file is (a second draw can shift)
    assert len(figures) == 4 and figures._repr_html_().count("data:image/png;base64,") == 4  # conv, pool x 2
    pooling = bn_run.show_pooling(3, data_dir=str(synthetic_dir))
    out = tmp_path / "figures"
    args = ["show", str(bn_run.path), "--image", "3", "--data-dir", str(synthetic_dir), "--out", str(out)]
    assert main([*args[:2], "features", *args[2:]]) == 0 and main([*args[:2], "pooling", *args[2:]]) == 0
    assert main([*args[:2], "filters", *args[4:]]) == 0
    capsys.readouterr()
    drawn = sorted(out.glob("features-3-*.png"))
    assert [p.read_bytes() for p in drawn] == features  # the same pictures
    assert (out / "pooling-3.png").read_bytes() == png_bytes(pooling)
    assert (out / "filters.png").read_bytes() == png_bytes(bn_run.show_filters())
    invariance = bn_run.show_invariance(
        np.roll(cnnlab.load_data(str(synthetic_dir)).test_images[3], 2, 1), data_dir=str(synthetic_dir)
    )
    assert invariance._suptitle.get_text().endswith("translation invariance, measured")
    assert "your image" in invariance.texts[0].get_text() or any(
        "your image" in t.get_text() for sub in invariance.subfigs for t in sub.texts
    )


def test_a_picture_of_a_test_image_out_of_range_is_one_line(bn_run, synthetic_dir):
    with pytest.raises(cnnlab.ConfigError, match="must be in 0..199"):
        bn_run.show_pooling(200, data_dir=str(synthetic_dir))
    with pytest.raises(cnnlab.ConfigError, match="n must be a whole number from 1 to 200"):
        bn_run.plot_mistakes(0)


def test_the_card_is_sharp_and_says_why_two_accuracies_differ(bn_run, tmp_path):
    card = bn_run._repr_html_()
    png = png_bytes(bn_run.plot())
    width = int.from_bytes(png[16:20], "big")
    assert f'width="{round(width / 2)}"' in card  # twice the pixels it is shown with
    assert "autocast" not in card  # a float32 run: one arithmetic, nothing to explain
    copy = tmp_path / "bf16"
    shutil.copytree(bn_run.path, copy)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "precision": "bf16"}))
    assert "under bfloat16 autocast" in cnnlab.load_run(copy)._repr_html_()

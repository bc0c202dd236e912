"""Every object the API returns shows itself in a notebook: the HTML and PNG each one gives IPython's
display protocol, checked here without a kernel (tests/test_notebook.py runs a real one)."""

import re

import numpy as np
import pytest

import cnnlab
from tests.test_api import parse


def test_a_summary_shows_its_table_once_with_the_totals():
    markup = cnnlab.summary("convnet")._repr_html_()
    text = parse(markup)
    assert markup.count("<table") == 1 and markup.count("<tr") == 1 + 1 + 10  # header, input, 10 layers
    assert text.count("Conv2d 1->32, 3x3") == 1
    assert "parameters:" in text and "mult-adds:" in text
    assert "convnet (torch backend), input (1, 28, 28), batch 1" in text


def test_a_summary_shows_the_layer_the_input_does_not_fit_as_a_row():
    markup = cnnlab.summary("seed", (1, 20, 20))._repr_html_()
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", markup)
    last = parse(rows[-1])
    assert "Linear 1600->128" in last and "does not fit" in last
    assert 'style="background' in markup.split("<tr")[-1]  # marked
    assert "does not fit layer 7 (Linear)" in parse(markup)
    assert "parameters:" not in parse(markup)


def test_a_numpy_model_is_headed_as_one():
    from cnnlab.models import build_model

    shown = cnnlab.summary(build_model("convnet", (1, 28, 28), 10, "numpy"))
    assert shown.heading.startswith("Sequential (numpy backend)")
    assert "numpy backend" in shown._repr_html_()
    import torch

    assert "(torch backend)" in cnnlab.summary(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))).heading


PNG = "data:image/png;base64,"


def body_rows(markup: str) -> list[str]:
    """The rows of a table's body (its header row left out)."""
    return re.findall(r"<tr>(.*?)</tr>", markup.split("<tbody>", 1)[1])


def test_a_figure_shows_itself_as_a_png_without_pyplot():
    from cnnlab.report.curves import history_figure

    figure = history_figure(
        [{"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9, "train_accuracy": 0.5, "valid_accuracy": 0.6}]
    )
    assert figure._repr_png_().startswith(b"\x89PNG")


def test_a_convolution_shows_its_grids_and_sums():
    result = cnnlab.convolve(padding=1)
    markup = result._repr_html_()
    text = parse(markup)
    assert markup.count("<table") == 3  # the padded input, the kernel, the output
    assert markup.count("color:#bbb") == 16  # the 16 padding zeros around the 3x3 input, in grey
    assert "y[1, 2] = (-2)(1) + (-2)(0) + (2)(0) + (-4)(1) = -6" in text and "agree" in text
    explanation = result.explain()
    assert str(explanation).splitlines() == list(explanation) and "<pre>" in explanation._repr_html_()


def test_a_convolution_animates_into_a_gif(tmp_path):
    animation = cnnlab.convolve().animate(ms_per_frame=100)
    assert animation.frames == 4 and animation.gif.startswith(b"GIF89a")
    assert "data:image/gif;base64," in animation._repr_html_()
    path = animation.save(tmp_path / "conv.gif")
    assert path.read_bytes() == animation.gif
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames == 4
    with pytest.raises(cnnlab.ConfigError, match="at most 14x14"):
        cnnlab.convolve(np.zeros((20, 20)), np.ones((3, 3))).animate()
    with pytest.raises(cnnlab.ConfigError, match="ms_per_frame must be a whole number >= 20"):
        cnnlab.convolve().animate(ms_per_frame=0)


def test_the_dataset_shows_its_splits_classes_and_one_image_of_each(synthetic_dir):
    data = cnnlab.load_data(str(synthetic_dir))
    markup = data._repr_html_()
    text = parse(markup)
    assert "train" in text and f"{len(data.train_images):,}" in text and "Ankle boot" in text
    assert markup.count(PNG) == 1 and repr(data).startswith("LabelledImages(fashion-mnist: train_images (")


def test_the_config_shows_every_option_and_what_changed():
    from cnnlab.training.config import FIELDS, resolve

    config = resolve({"epochs": 3, "preset": "seed"})
    rows = body_rows(config._repr_html_())
    assert len(rows) == len(FIELDS)
    epochs = parse(next(r for r in rows if ">epochs<" in r))
    assert "3" in epochs and "default 8" in epochs and "passes over the training split" in epochs
    assert "changed" not in parse(next(r for r in rows if ">threads<" in r))


def test_options_lists_every_option_with_its_default_and_help():
    from cnnlab.training.config import FIELDS

    options = cnnlab.options()
    assert [o.name for o in options] == list(FIELDS)
    lr = next(o for o in options if o.name == "lr")
    assert lr.default == 0.01 and lr.flag == "--lr" and "learning rate" in lr.help and lr.accepts == "> 0"
    assert "one of sgd, adam, adamw" in next(o for o in options if o.name == "optimizer").accepts
    assert "lesson" in next(o for o in options if o.name == "preset").accepts
    assert "or None" in next(o for o in options if o.name == "patience").accepts
    assert len(body_rows(options._repr_html_())) == len(FIELDS)
    assert str(options).count("\n") == 2 * len(FIELDS) - 1


SMALL = dict(train_size=300, valid_size=100, batch_size=50)


def test_comparison_and_lr_find_show_their_tables_and_plots(synthetic_dir, tmp_path):
    comparison = cnnlab.compare(
        ["sgd", "adam"], seeds=2, epochs=1, out=tmp_path / "c", data_dir=str(synthetic_dir), **SMALL
    )
    markup = comparison._repr_html_()
    rows = body_rows(markup)
    assert len(rows) == 2 and "±" in parse(rows[0]) and markup.count(PNG) == 1
    assert len(comparison.plot().axes) == 2
    found = cnnlab.lr_find(steps=20, out=str(tmp_path / "l"), data_dir=str(synthetic_dir), **SMALL)
    markup = found._repr_html_()
    assert markup.count(PNG) == 1 and "lowest" in parse(markup)
    assert found.plot().axes[0].get_xscale() == "log"

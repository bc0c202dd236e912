"""``cnnlab predict``: photos of any size and colour made to look like Fashion-MNIST, then top-3."""

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import CLASS_NAMES
from cnnlab.data.images import read_image
from tests.conftest import REAL_DATA, requires_real_data
from tests.datasets import to_fashion_mnist


def drawn_item(light_on_dark: bool) -> Image.Image:
    """A 300x200 RGB photo with a 60x120 item off-centre: light on black, or dark on beige paper."""
    canvas = (
        np.zeros((200, 300, 3), np.uint8)
        if light_on_dark
        else np.full((200, 300, 3), (245, 240, 225), np.uint8)
    )
    canvas[30:150, 200:260] = (230, 220, 210) if light_on_dark else (40, 30, 90)
    return Image.fromarray(canvas)


def test_a_light_item_is_cropped_centred_and_stretched(tmp_path):
    drawn_item(light_on_dark=True).save(tmp_path / "item.png")
    prepared = to_fashion_mnist(read_image(tmp_path / "item.png"))
    image = prepared.image
    assert image.shape == (28, 28) and image.dtype == np.uint8 and not prepared.inverted
    assert image.max() == 255 and image[:, :3].max() == 0 and image[:, -3:].max() == 0  # black margins
    rows, cols = np.nonzero(image > 128)
    assert (rows.min(), rows.max()) == (0, 27)  # the longest side fills the frame, as in Fashion-MNIST
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5  # centred


def test_dark_on_light_photos_are_inverted_automatically_or_on_request(tmp_path):
    drawn_item(light_on_dark=True).save(tmp_path / "light.png")
    drawn_item(light_on_dark=False).save(tmp_path / "dark.jpg", quality=95)
    reference = to_fashion_mnist(read_image(tmp_path / "light.png")).image.astype(int)
    auto = to_fashion_mnist(read_image(tmp_path / "dark.jpg"))
    forced = to_fashion_mnist(read_image(tmp_path / "dark.jpg"), invert=True)
    assert auto.inverted and forced.inverted
    assert np.abs(auto.image.astype(int) - reference).mean() < 8
    assert np.array_equal(auto.image, forced.image)
    wrong = to_fashion_mnist(read_image(tmp_path / "dark.jpg"), invert=False)
    assert np.abs(wrong.image.astype(int) - reference).mean() > 30  # the paper became the "item"


def test_transparent_png_and_blank_image(tmp_path):
    rgba = np.zeros((50, 40, 4), np.uint8)
    rgba[10:40, 10:30] = (20, 20, 20, 255)  # a dark item on a transparent background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    prepared = to_fashion_mnist(read_image(tmp_path / "cutout.png"))
    assert prepared.inverted and prepared.image.max() == 255
    blank = to_fashion_mnist(np.full((30, 30), 255.0))
    assert blank.image.max() == 0


@requires_real_data
def test_a_photographed_fashion_mnist_image_comes_back_close_to_the_original(tmp_path):
    from cnnlab import data

    original = data.FASHION_MNIST.read(REAL_DATA).test_images[0, 0]  # an ankle boot
    photo = Image.new("RGB", (480, 360), (250, 248, 240))
    photo.paste(
        Image.fromarray(255 - original).resize((224, 224), Image.Resampling.BICUBIC).convert("RGB"), (200, 90)
    )
    photo.save(tmp_path / "photo.jpg", quality=90)
    seen = to_fashion_mnist(read_image(tmp_path / "photo.jpg")).image
    assert np.corrcoef(seen.ravel(), original.ravel())[0, 1] > 0.85


@pytest.fixture
def images(tmp_path):
    drawn_item(light_on_dark=True).save(tmp_path / "a.png")
    drawn_item(light_on_dark=False).save(tmp_path / "b.jpg")
    (tmp_path / "notes.png").write_text("this is text, not an image")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        tmp_path / "cut.png"
    )
    whole = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # a download cut short
    return tmp_path


def test_predict_prints_top_3_and_reports_each_bad_file_but_goes_on(trained_run, images, capsys):
    code = main(
        [
            "predict",
            str(trained_run),
            str(images / "a.png"),
            str(images / "notes.png"),
            str(images / "cut.png"),
            str(images / "missing.jpg"),
            str(images / "b.jpg"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 2
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(images / "a.png"), str(images / "b.jpg")]
    assert all(line.count("%") == 3 for line in lines) and "(inverted)" in lines[1]
    errors = err.splitlines()
    assert len(errors) == 4 and all(e.startswith("cnnlab: error:") for e in errors)
    assert "notes.png is not an image" in errors[0] and "cut.png is a damaged" in errors[1]
    assert "missing.jpg: no such file" in errors[2] and "3 of 5 file(s)" in errors[3]


def test_predict_json_and_saved_inputs(trained_run, images, tmp_path, capsys):
    seen = tmp_path / "seen"
    assert (
        main(
            [
                "predict",
                str(trained_run),
                str(images / "a.png"),
                str(images / "b.jpg"),
                "--json",
                "--save-input",
                str(seen),
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert [r["inverted"] for r in results] == [False, True]
    for result in results:
        probs = [t["probability"] for t in result["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert all(t["class"] in CLASS_NAMES for t in result["top"])
    assert Image.open(seen / "a.png").size == (28, 28)


def test_predict_agrees_with_the_model_on_a_dataset_image(trained_run, synthetic_dir):
    from cnnlab.report.metrics import top_classes
    from cnnlab.runs.loader import load_run
    from cnnlab.runs.reporting import evaluate_run

    run = load_run(trained_run)
    ev = evaluate_run(run, "test", synthetic_dir)
    top = top_classes(run.probabilities(ev.images[:20]), run.class_names, k=1)
    assert [t[0]["class"] for t in top] == [CLASS_NAMES[p] for p in ev.predictions[:20]]
    assert len(run.class_names) == 10


def test_predict_rejects_a_bad_top(trained_run, images, capsys):
    assert main(["predict", str(trained_run), str(images / "a.png"), "--top", "11"]) == 2
    assert "--top must be between 1 and 10, the run's classes. Received: 11" in capsys.readouterr().err


def test_invert_and_no_invert_override_the_border(trained_run, images, tmp_path, capsys):
    """a.png is light on dark (left as is by default), b.jpg dark on light (inverted by default)."""
    files = [str(images / "a.png"), str(images / "b.jpg")]
    for flag, inverted in (("--invert", True), ("--no-invert", False)):
        seen = tmp_path / flag
        assert main(["predict", str(trained_run), *files, flag, "--json", "--save-input", str(seen)]) == 0
        results = json.loads(capsys.readouterr().out)
        assert [r["inverted"] for r in results] == [inverted, inverted]
        for path, name in zip(files, ("a.png", "b.png")):
            expected = to_fashion_mnist(read_image(path), invert=inverted).image
            assert np.array_equal(np.asarray(Image.open(seen / name)), expected), (flag, name)
    assert main(["predict", str(trained_run), *files, "--invert"]) == 0
    assert [line.endswith("  (inverted)") for line in capsys.readouterr().out.splitlines()] == [True, True]
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(trained_run), *files, "--invert", "--no-invert"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_predict_json_gives_each_unreadable_file_an_error_entry(trained_run, images, capsys):
    files = [str(images / name) for name in ("a.png", "notes.png", "missing.jpg", "b.jpg")]
    assert main(["predict", str(trained_run), *files, "--json", "--top", "2"]) == 2
    out, err = capsys.readouterr()
    results = json.loads(out)  # still one JSON document, every file in order
    assert [r["file"] for r in results] == files
    good, not_image, missing, other = results
    assert set(good) == set(other) == {"file", "inverted", "top"} and len(good["top"]) == 2
    assert set(not_image) == set(missing) == {"file", "error"}
    assert (
        "notes.png is not an image" in not_image["error"] and "missing.jpg: no such file" in missing["error"]
    )
    assert err.splitlines() == [
        f"cnnlab: error: {not_image['error']}",
        f"cnnlab: error: {missing['error']}",
        "cnnlab: error: 2 of 4 file(s) could not be classified",
    ]

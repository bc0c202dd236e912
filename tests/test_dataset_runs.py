"""Runs on datasets other than Fashion-MNIST, end to end: networks shaped by the data, the run's
dataset recorded, and every tool after training (evaluate, predict, export, show, report) following
it: class names, colour, image size."""

import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import ConfigError, RunDirError
from cnnlab.models import build_model
from tests.datasets import write_cifar_archive, write_image_folder

QUICK = ["--epochs", "3", "--batch-size", "16", "--precision", "32", "--quiet"]


def test_the_digits_train_with_defaults_scaled_to_their_size(tmp_path, capsys):
    assert (
        main(["train", "--dataset", "digits", "--epochs", "2", "--out", str(tmp_path / "run"), "--quiet"])
        == 0
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    # 8x8 is too small for the notebook's network (10x10 at least), so the default is vgg-mini; a
    # tenth of the 1,437 training images validates.
    assert (config["dataset"], config["model"], config["valid_size"]) == ("digits", "vgg-mini", 143)
    dataset = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert dataset["input_shape"] == [1, 8, 8] and dataset["classes"] == [str(d) for d in range(10)]
    report = (tmp_path / "run" / "classification_report.txt").read_text()
    assert report.splitlines()[2].split()[0] == "0" and "support" in report
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["dataset"] == "digits"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--hflip"], "the images of digits change class when mirrored .* drop --hflip"),
        (["--tta"], "drop --tta"),
        (["--model", "convnet"], "model convnet needs images of at least 10x10 pixels; these are 8x8"),
        (["--cutout", "9"], "--cutout must be at most 8 pixels for the 8x8 images of digits"),
        (["--train-size", "1400"], r"must fit in the 1,437 training images of digits"),
        (["--dataset", "digts"], "unknown dataset 'digts'; did you mean digits"),
    ],
)
def test_options_that_do_not_fit_the_dataset_are_one_line(tmp_path, capsys, extra, message):
    import re

    argv = ["train", "--dataset", "digits", *extra, "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_a_presets_mirror_images_are_dropped_for_digits_but_kept_for_clothes():
    from cnnlab.training.config import resolve

    digits = resolve({"preset": "fast-cpu", "dataset": "digits", "model": "vgg-mini"})
    assert (digits.hflip, digits.tta) == (False, False)
    assert resolve({"preset": "fast-cpu"}).hflip is True


def test_a_colour_folder_trains_and_predicts_from_pngs_end_to_end(tmp_path, capsys):
    import onnxruntime

    folder = write_image_folder(tmp_path / "shapes", per_class=20, size=(16, 16), split=True)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(folder), "--model", "vgg-mini", "--out", str(run), *QUICK]) == 0
    assert json.loads((run / "dataset.json").read_text())["input_shape"] == [3, 16, 16]
    capsys.readouterr()
    # predict from PNG files: prepared to the run's size and colour, named by the folder's classes
    photo = Image.open(folder / "test" / "square" / "square-000.png").resize((40, 40))
    photo.save(tmp_path / "square.jpg")
    assert (
        main(
            [
                "predict",
                str(run),
                str(tmp_path / "square.jpg"),
                "--json",
                "--save-input",
                str(tmp_path / "seen"),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)[0]
    assert result["top"][0]["class"] in ("circle", "square", "triangle")
    seen = Image.open(tmp_path / "seen" / "square.png")
    assert seen.mode == "RGB" and seen.size == (16, 16)
    # the trained model has learnt the colour bands: most test images right
    assert cnnlab.load_run(run).evaluate()["accuracy"] > 0.8
    # export records the input shape and class names, and runs in onnxruntime on 3x16x16
    assert main(["export", str(run), "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["input_shape"]) == [3, 16, 16]
    assert json.loads(meta["class_names"]) == ["circle", "square", "triangle"]
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert session.run(None, {"image": x})[0].shape == (2, 3)
    # pictures: the input in colour beside its feature maps; the report
    assert main(["show", str(run), "features", "--image", "0", "--out", str(tmp_path / "fig")]) == 0
    assert main(["report", str(run)]) == 0
    assert "circle" in (run / "report.html").read_text()


def test_the_numpy_engine_trains_on_colour_images(tmp_path):
    folder = write_image_folder(tmp_path / "shapes", per_class=15, size=(12, 12))
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(folder), "--model", "vgg-mini", "--width", "0.25", "--backend", "numpy"]
    assert main([*argv, "--out", str(run), "--lr", "0.01", *QUICK]) == 0
    assert cnnlab.load_run(run).evaluate()["accuracy"] > 0.5


@pytest.mark.parametrize("name", ["convnet", "convnet-pool-bn", "vgg-mini", "resnet-mini"])
def test_every_built_in_model_takes_the_datasets_shape_and_classes(name):
    for shape, classes in [((3, 32, 32), 10), ((1, 12, 20), 4), ((3, 16, 16), 7)]:
        model = build_model(name, shape, classes).eval()
        assert model(torch.zeros(2, *shape)).shape == (2, classes)
    assert (
        sum(p.numel() for p in build_model("seed", (1, 28, 28), 10).parameters()) == 225_034
    )  # the notebook's


def test_cifar10_trains_from_its_archive(tmp_path):
    archive, _ = write_cifar_archive(tmp_path / "data", per_batch=30, test=40)
    run = tmp_path / "run"
    argv = ["train", "--dataset", "cifar10", "--data-dir", str(archive.parent), "--model", "vgg-mini"]
    assert main([*argv, "--width", "0.25", "--out", str(run), "--valid-size", "20", *QUICK]) == 0
    assert json.loads((run / "dataset.json").read_text())["classes"][0] == "airplane"


def test_a_run_evaluated_against_other_data_is_refused(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "shapes", per_class=10, size=(12, 12))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(folder), "--model", "vgg-mini", "--out", str(run), *QUICK]) == 0
    write_image_folder(folder, classes=("star",), per_class=10, size=(12, 12))  # now four classes
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "was trained on shapes (3 classes of 3x12x12 images), but the data found now has 4 classes" in err


def test_a_run_saved_before_datasets_loads_as_fashion_mnist(trained_run, tmp_path, synthetic_dir):
    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    (run / "dataset.json").unlink()
    config = json.loads((run / "config.json").read_text())
    del config["dataset"], config["image_size"], config["color"]
    (run / "config.json").write_text(json.dumps(config))
    loaded = cnnlab.load_run(run)
    assert loaded.dataset.name == "fashion-mnist"
    assert loaded.evaluate(data_dir=str(synthetic_dir))["class_names"][0] == "T-shirt/top"


@pytest.mark.parametrize("lost", ["mean", "std"])
def test_a_run_whose_dataset_json_lost_its_normalisation_names_the_file(trained_run, tmp_path, capsys, lost):
    """A run trained with its per-channel mean and std; a dataset.json without one is damaged, and
    every command that loads the run says which file, in one line."""
    run = tmp_path / "damaged"
    shutil.copytree(trained_run, run)
    saved = json.loads((run / "dataset.json").read_text())
    saved[lost] = None
    (run / "dataset.json").write_text(json.dumps(saved))
    said = f"{run / 'dataset.json'} lacks the mean and std the run normalised its images with"
    with pytest.raises(cnnlab.RunDirError, match=re.escape(said)):
        cnnlab.load_run(run).dataset  # noqa: B018 (the property reads dataset.json)
    for command in (["evaluate", str(run)], ["explore", str(run), "--port", "0"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and said in err, err


def test_fashion_mnist_as_png_folders_trains_exactly_as_from_idx(tmp_path, synthetic_dir):
    """The folder that `cnnlab data export` writes reads back as the same images, labels, order and
    normalisation, so a run on it is the run on the IDX files, to the bit."""
    assert (
        main(["data", "export", "fashion-mnist", str(tmp_path / "png"), "--data-dir", str(synthetic_dir)])
        == 0
    )
    common = ["--model", "convnet", "--train-size", "400", "--valid-size", "100", *QUICK]
    assert main(["train", "--data-dir", str(synthetic_dir), "--out", str(tmp_path / "idx"), *common]) == 0
    assert (
        main(["train", "--dataset", str(tmp_path / "png"), "--out", str(tmp_path / "folder"), *common]) == 0
    )
    idx, folder = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("idx", "folder"))
    assert folder["test_accuracy"] == idx["test_accuracy"]
    rows = [(tmp_path / r / "metrics.csv").read_text().splitlines() for r in ("idx", "folder")]
    assert [line.split(",")[:6] for line in rows[0]] == [line.split(",")[:6] for line in rows[1]]


def test_the_api_takes_a_dataset_and_lists_what_it_needs():
    images = cnnlab.load_data(dataset="digits")
    assert images.train_images.shape == (1_437, 1, 8, 8) and images.classes[3] == "3"
    assert cnnlab.summary("vgg-mini", dataset="cifar10").input_shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="needs images of at least 10x10"):
        cnnlab.summary("convnet", dataset="digits")
    with pytest.raises(RunDirError):
        cnnlab.load_run("/nonexistent/run")

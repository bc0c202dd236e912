"""``cnnlab show``: the five pictures of a tiny trained run, the invariance numbers, clear errors."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.inspect.invariance import MAX_SHIFT, shift


@pytest.fixture(scope="module")
def run_dir(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("show") / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "convnet",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(out),
                "--train-size",
                "400",
                "--valid-size",
                "100",
                "--batch-size",
                "50",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    return out


def pngs(capsys) -> list[str]:
    return [
        line.removeprefix("wrote ")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("wrote ")
    ]


def assert_png(path, min_width=600):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_width and image.size[1] >= 250


def test_filters_go_to_the_run_directory_by_default(run_dir, capsys):
    assert main(["show", str(run_dir), "filters"]) == 0
    [path] = pngs(capsys)
    assert path == str(run_dir / "figures" / "filters.png")
    assert_png(path)


def test_features_draw_every_conv_and_pool_layer(run_dir, tmp_path, capsys):
    assert main(["show", str(run_dir), "features", "--image", "5", "--out", str(tmp_path)]) == 0
    paths = pngs(capsys)
    assert [p.split("/")[-1] for p in paths] == [
        "features-5-00-layer0-Conv2d.png",
        "features-5-01-layer2-MaxPool2d.png",
        "features-5-02-layer3-Conv2d.png",
        "features-5-03-layer5-MaxPool2d.png",
    ]
    for path in paths:
        assert_png(path)


def test_pooling(run_dir, tmp_path, capsys):
    assert main(["show", str(run_dir), "pooling", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a 26x26 feature map pooled to 13x13 (25% of the values kept" in out
    assert_png(tmp_path / "pooling-0.png")


def test_invariance_prints_the_numbers(run_dir, tmp_path, capsys):
    assert main(["show", str(run_dir), "invariance", "--image", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("dx"))
    assert lines[header].split()[:7] == ["dx", "dy", "input", "0", "2", "3", "5"]
    unshifted = lines[header + 1].split()
    assert unshifted[:7] == ["0", "0", "0.00", "0.00", "0.00", "0.00", "0.00"] and unshifted[-1] == "100%"
    one_px = lines[header + 2].split()
    assert one_px[:2] == ["1", "0"] and float(one_px[2]) > 0.05  # the pixels did move
    assert "(mean of 20 images)" in out
    assert_png(tmp_path / "invariance-2.png")


def test_saliency_draws_the_three_maps_for_the_predicted_class(run_dir, tmp_path, capsys):
    import cnnlab
    from cnnlab.runs.loader import load_run

    assert main(["show", str(run_dir), "saliency", "--image", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "Grad-CAM of layer 3, the last convolution" in out and f"wrote {tmp_path / 'saliency-3.png'}" in out
    )
    assert_png(tmp_path / "saliency-3.png", min_width=1200)
    image = load_run(run_dir).images("test", None)[0][3]
    predicted = cnnlab.load_run(run_dir).predict(image, top=1)[0]["top"][0]["class"]
    assert f"the maps explain {predicted};" in out


def test_shift_moves_and_zero_fills():
    image = np.arange(1, 17, dtype=np.uint8).reshape(1, 4, 4)
    moved = shift(image, 1, 2)[0]
    assert (moved[:2] == 0).all() and (moved[:, 0] == 0).all()
    assert (moved[2:, 1:] == image[0, :2, :3]).all()
    assert (shift(image, 0, 0) == image).all()
    assert (shift(image, MAX_SHIFT, 0) == 0).all()  # 4 px right pushes a 4-wide image out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "200"], "--image must be in 0..199"),
        (["--image", "-1"], "--image must be in 0..199"),
    ],
)
def test_bad_image_index(run_dir, tmp_path, capsys, args, message):
    assert main(["show", str(run_dir), "features", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_not_a_run_or_no_weights(run_dir, tmp_path, capsys):
    assert main(["show", str(tmp_path / "nowhere"), "filters"]) == 2
    assert "does not exist" in capsys.readouterr().err
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((run_dir / "config.json").read_text())
    assert main(["show", str(partial), "filters"]) == 2
    assert "checkpoint.pt is missing" in capsys.readouterr().err
    (partial / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["show", str(partial), "filters"]) == 2
    assert "checkpoint.pt is corrupt or not a cnnlab checkpoint" in capsys.readouterr().err

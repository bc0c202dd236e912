"""A folder of one's own images as a dataset (one subfolder per class), and any dataset written out
as such a folder: layouts, class order, sizes, colour, the test split, and every bad folder refused
in one line that names what is wrong."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from cnnlab import data
from cnnlab.cli import main
from cnnlab.data.folder import FolderSource, scan
from cnnlab.errors import DataError, ImageError
from tests.datasets import write_image_folder
from tests.idx import write_synthetic_dataset


def test_class_folders_make_the_classes_and_a_stratified_fifth_is_the_test_set(tmp_path):
    root = write_image_folder(tmp_path / "shapes", classes=("square", "circle", "triangle"), per_class=10)
    dataset, images = data.load_dataset(str(root))
    assert dataset.classes == ("circle", "square", "triangle")  # sorted, as ImageFolder sorts them
    assert dataset.input_shape == (3, 16, 16) and dataset.color == "rgb"
    assert (dataset.train_total, dataset.test_total) == (24, 6)
    assert np.bincount(images.test_labels).tolist() == [2, 2, 2]  # a fifth of each class
    assert dataset.name == str(root.resolve()) and dataset.title == "shapes"
    notes = FolderSource(root).notes()
    assert any("stratified fifth of each class is the test set" in n for n in notes)
    _, again = data.load_dataset(str(root))
    assert np.array_equal(again.test_images, images.test_images)  # the same split every run
    # each class's images really are that class's (the generator draws class k's band at row band k)
    band = images.train_images[images.train_labels == 0]
    assert band.shape[0] == 8


def test_train_and_test_folders_are_the_two_parts(tmp_path):
    root = write_image_folder(tmp_path / "split", per_class=9, split=True, mode="L")
    dataset, images = data.load_dataset(str(root))
    assert (dataset.train_total, dataset.test_total) == (27, 9) and dataset.input_shape == (1, 16, 16)
    assert not any("stratified" in n for n in FolderSource(root).notes())
    (root / "test" / "hexagon").mkdir()
    (root / "test" / "hexagon" / "a.png").write_bytes(
        (root / "test" / "circle" / "circle-000.png").read_bytes()
    )
    with pytest.raises(DataError, match="class folder.s. hexagon that train/ lacks"):
        data.load_dataset(str(root))


def test_files_that_are_not_images_are_skipped_and_counted(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=5)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "square" / "labels.csv").write_text("a,b")
    (root / "square" / ".DS_Store").write_bytes(b"\0")  # hidden: not even counted
    dataset, _ = data.load_dataset(str(root))
    assert dataset.train_total + dataset.test_total == 15
    assert "skipped 2 file(s) that are not images (notes.txt, labels.csv)" in FolderSource(root).notes()


def test_an_unreadable_or_truncated_image_is_named_with_how_many_others_failed(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=5)
    (root / "circle" / "circle-001.png").write_bytes(b"not a png at all")
    (root / "square" / "square-002.png").write_bytes(b"nor this")
    with pytest.raises(
        ImageError, match=r"circle-001.png cannot be read as an image .*1 other image.s. failed too"
    ):
        data.load_dataset(str(root))
    fresh = write_image_folder(tmp_path / "g", per_class=5)
    path = fresh / "triangle" / "triangle-003.png"
    path.write_bytes(path.read_bytes()[:60])  # a valid header, the pixels cut off
    with pytest.raises(ImageError, match="triangle-003.png cannot be read"):
        data.load_dataset(str(fresh))


def test_mixed_sizes_are_refused_with_the_sizes_found_unless_resized(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=5, size=(16, 16))
    write_image_folder(
        tmp_path / "f", classes=("circle",), per_class=2, size=(20, 12), seed=1
    )  # two replaced
    with pytest.raises(DataError, match=r"have 2 sizes \(16x16: 13, 20x12: 2\); pass --image-size N"):
        data.load_dataset(str(root))
    dataset, images = data.load_dataset(str(root), image_size=8)
    assert dataset.input_shape == (3, 8, 8) and images.train_images.shape[1:] == (3, 8, 8)


def test_colour_is_rgb_when_any_image_has_colour_and_can_be_forced(tmp_path):
    root = write_image_folder(tmp_path / "gray", per_class=5, mode="L")
    assert data.open_dataset(str(root)).color == "gray"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(root / "circle" / "red.png")
    assert data.open_dataset(str(root)).color == "rgb"
    dataset, images = data.load_dataset(str(root), color="gray")
    assert dataset.input_shape == (1, 16, 16)
    red = Image.open(root / "circle" / "red.png").convert("L")
    found = [i for i, image in enumerate(images.train_images) if (image == np.asarray(red)).all()]
    found += [i for i, image in enumerate(images.test_images) if (image == np.asarray(red)).all()]
    assert found  # converted as Pillow's convert("L") does


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda r: (r / "only").mkdir(parents=True),
            r"holds 1 class folder.s.: only; a dataset needs at least two",
        ),
        (lambda r: r.mkdir(), r"holds 0 class folder"),
        (lambda r: [(r / c).mkdir(parents=True) for c in ("a", "b")], r"/a holds no images"),
    ],
)
def test_a_folder_that_is_no_dataset_is_named(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(DataError, match=message):
        data.load_dataset(str(root))


def test_a_lone_train_folder_is_explained(tmp_path):
    write_image_folder(tmp_path / "r" / "train", per_class=3)
    with pytest.raises(DataError, match="a train/ folder needs a test/ folder beside it"):
        data.open_dataset(str(tmp_path / "r"))


def test_a_missing_folder_or_a_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        data.open_dataset(str(tmp_path / "absent"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="no such folder"):
        data.open_dataset(str(tmp_path / "file"))


def test_a_changed_folder_is_scanned_again(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=5)
    assert scan(root).classes == ("circle", "square", "triangle")
    write_image_folder(root, classes=("star",), per_class=5)
    os.utime(root, ns=(1, 1))  # even with the folder's own time set back, the new class folder counts
    assert scan(root).classes == ("circle", "square", "star", "triangle")


# Writing a dataset out as a folder


def test_an_exported_dataset_reads_back_as_the_same_dataset(tmp_path, capsys):
    assert main(["data", "export", "digits", str(tmp_path / "digits")]) == 0
    assert "wrote 1437 train images" in capsys.readouterr().out
    original, images = data.load_dataset("digits")
    dataset, back = data.load_dataset(str(tmp_path / "digits"))
    for part in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(back, part), getattr(images, part)), part
    assert dataset.classes == original.classes and not dataset.flips and dataset.item_on_black
    assert (dataset.mean, dataset.std) == (original.mean, original.std)
    description = json.loads((tmp_path / "digits" / "dataset.json").read_text())
    assert description["classes"] == list(original.classes)
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == ["dataset.json", "test", "train"]


def test_an_exported_idx_dataset_keeps_its_order_labels_and_normalisation(tmp_path, synthetic_dir):
    """Class names that are no folder names ("T-shirt/top") become safe ones, and the dataset.json
    written beside the images keeps their order, so labels and normalisation are those of the IDX files."""
    original, images = data.load_dataset("fashion-mnist", synthetic_dir)
    data.folder.export(original, images, tmp_path / "png", log=lambda m: None)
    assert (tmp_path / "png" / "train" / "T-shirt-top").is_dir()
    dataset, back = data.load_dataset(str(tmp_path / "png"))
    assert dataset.classes[0] == "T-shirt-top" and dataset.mean == (0.5,)
    for part in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(back, part), getattr(images, part)), part


def test_export_never_writes_into_a_folder_that_holds_something(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    from cnnlab.cli import build_parser

    args = build_parser().parse_args(["data", "export", "digits", str(tmp_path / "busy")])
    with pytest.raises(DataError, match="already exists and is not empty"):
        args.func(args)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["mine.txt"]


def test_data_verify_reads_a_folder(tmp_path, capsys):
    root = write_image_folder(tmp_path / "f", per_class=5)
    assert main(["data", "verify", str(root)]) == 0
    assert "12 training and 3 test images" in capsys.readouterr().out


def test_the_synthetic_fashion_files_export_too(tmp_path):
    write_synthetic_dataset(tmp_path / "idx", n_train=30, n_test=10)
    assert (
        main(["data", "export", "fashion-mnist", str(tmp_path / "out"), "--data-dir", str(tmp_path / "idx")])
        == 0
    )
    assert len(list((tmp_path / "out" / "train").rglob("*.png"))) == 30


# Decoding within the budget of cnnlab.data.decode, and the pixels Pillow alone gives


def _photo(width: int, height: int, mode: str, seed: int = 0) -> Image.Image:
    """Smooth colour waves with noise: what a photo asks of a JPEG encoder and of a resize."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    waves = [127 + 100 * np.sin(x / (7 + 5 * c) + y / (11 + 3 * c) + c) for c in range(3)]
    pixels = np.clip(np.stack(waves, 2) + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _pillow_alone(path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """What the folder gave before it went through cnnlab.data.decode, and torchvision's loader gives:
    a JPEG drafted towards the size, converted, then one bilinear resize from the full resolution."""
    with Image.open(path) as image:
        image.draft(mode, size)
        image = image.convert(mode)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


@pytest.mark.parametrize(
    "kind, size, suffix",
    [
        ("L", (16, 16), ".png"),
        ("RGB", (20, 12), ".png"),
        ("RGB", (40, 30), ".jpg"),
        ("L", (300, 200), ".jpg"),
        ("RGB", (1500, 1100), ".jpg"),  # over MAX_SIDE: drafted, never box-averaged
        ("RGB", (1300, 1030), ".png"),  # over MAX_SIDE: resized straight from its full resolution
    ],
)
@pytest.mark.parametrize("image_size", [None, 12, 40])
@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_ordinary_images_read_as_pillow_alone_reads_them(tmp_path, kind, size, suffix, image_size, color):
    root = tmp_path / "f"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for k in range(3):
            _photo(*size, kind, seed=k + 3 * (label == "b")).save(root / label / f"{k}{suffix}", quality=90)
    source = FolderSource(root, image_size, color)
    images = source.read()
    mode = "RGB" if color == "rgb" else "L"
    target = (image_size, image_size) if image_size else size
    paths = [e.path for e in (*source.scan.train, *source.scan.test)]
    found = np.concatenate([images.train_images, images.test_images])
    expected = np.stack([_pillow_alone(p, mode, target) for p in paths])
    assert found.shape == expected.shape and np.array_equal(found, expected)


def test_images_over_the_decoders_budget_are_refused_by_path_with_how_many_others(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=4)
    Image.new("L", (4000, 2500), 90).save(root / "circle" / "big.png")  # 10 MP: over the 8 MP cap
    _photo(64, 64, "L").resize((4200, 4000)).save(root / "square" / "wide.jpg", progressive=True)
    with pytest.raises(
        ImageError,
        match=r"circle/big.png cannot be read \(it would decode to 10 megapixels, more than the 8 .*"
        r"1 other image.s. failed too",
    ):
        data.load_dataset(str(root), image_size=16)
    (root / "circle" / "big.png").unlink()
    with pytest.raises(ImageError, match=r"wide.jpg cannot be read \(it would decode to 17 megapixels"):
        data.load_dataset(str(root), image_size=16)  # progressive: no draft saves its coefficients


def test_a_large_baseline_jpeg_is_drafted_down_within_the_budget(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=4, mode="L")
    path = root / "circle" / "huge.jpg"
    _photo(64, 64, "L").resize((5000, 4000)).save(path)  # 20 MP, decoded at 1/8 of its size
    _, images = data.load_dataset(str(root), image_size=16)
    every = np.concatenate([images.train_images, images.test_images])
    assert any(np.array_equal(image, _pillow_alone(path, "L", (16, 16))) for image in every)

"""The dataset layer: the registry, the Dataset object, normalisation per channel, one size and
colour mode, and the readers of MNIST, KMNIST, CIFAR-10 and scikit-learn's digits, on files made in
their exact formats (none of them can be downloaded here) and served over a real HTTP server."""

import dataclasses
import gzip
import hashlib
import http.server
import os
import pickle
import threading

import numpy as np
import pytest
import torch

from cnnlab import data
from cnnlab.cli import main
from cnnlab.data import cifar, conform, digits, idx_datasets, location
from cnnlab.data.dataset import Dataset, channel_statistics
from cnnlab.errors import DataError
from cnnlab.training.torch_engine import normalize_images
from tests.datasets import CIFAR_CLASSES, cifar_files, write_cifar_archive, write_cifar_folder
from tests.idx import write_synthetic_dataset


def test_the_registry_names_every_built_in_dataset_and_suggests_on_a_typo(capsys):
    assert list(data.BUILT_IN) == ["fashion-mnist", "mnist", "kmnist", "cifar10", "digits"]
    with pytest.raises(DataError, match="unknown dataset 'fashon-mnist'; did you mean fashion-mnist"):
        data.open_dataset("fashon-mnist")
    with pytest.raises(DataError, match="unknown dataset 'cifar'; did you mean cifar10"):
        data.get_source("cifar")
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    for dataset in data.list_datasets():
        assert dataset.name in listed and " x ".join(map(str, dataset.input_shape)) in listed
    assert "1,437" in listed and "3 x 32 x 32" in listed


def test_each_dataset_knows_its_shape_classes_sizes_and_mirrors():
    shapes = {
        d.name: (d.input_shape, d.num_classes, d.train_total, d.test_total, d.flips)
        for d in data.list_datasets()
    }
    assert shapes == {
        "fashion-mnist": ((1, 28, 28), 10, 60_000, 10_000, True),
        "mnist": ((1, 28, 28), 10, 60_000, 10_000, False),
        "kmnist": ((1, 28, 28), 10, 60_000, 10_000, False),
        "cifar10": ((3, 32, 32), 10, 50_000, 10_000, True),
        "digits": ((1, 8, 8), 10, 1_437, 360, False),
    }
    assert data.open_dataset().classes[0] == "T-shirt/top"
    assert data.open_dataset("cifar10").classes == tuple(CIFAR_CLASSES)


SIZES = {"train_total": 10, "test_total": 2}


def test_a_dataset_round_trips_through_json_and_a_damaged_record_is_one_line():
    dataset = data.open_dataset("cifar10")
    assert Dataset.from_json(dataset.to_json()) == dataset
    for bad, why in [
        ([1, 2], "does not describe a dataset"),
        ({**SIZES, "name": "x", "classes": ["a"], "input_shape": [1, 2, 2]}, "at least two"),
        ({**SIZES, "name": "x", "classes": ["a", "b"], "input_shape": [2, 2, 2]}, "1 or 3"),
        (
            {**SIZES, "name": "x", "classes": ["a", "b"], "input_shape": [3, 2, 2], "mean": [0.5]},
            "per channel",
        ),
        (
            {
                **SIZES,
                "name": "x",
                "classes": ["a", "b"],
                "input_shape": [1, 2, 2],
                "mean": [0.5],
                "std": [0],
            },
            "positive",
        ),
        ({"name": "x", "classes": ["a", "b"], "input_shape": [1, 2, 2]}, "train_total"),
    ]:
        with pytest.raises(DataError, match=why):
            Dataset.from_json(bad, "run/dataset.json")


def test_normalisation_is_per_channel_and_bit_identical_in_both_engines():
    dataset = dataclasses.replace(
        data.open_dataset("cifar10"), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
    )
    pixels = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)
    ours = dataset.normalize(pixels)
    expected = (pixels.astype(np.float64) / 255 - np.array(dataset.mean)[:, None, None]) / np.array(
        dataset.std
    )[:, None, None]
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)
    assert ours.dtype == np.float32
    assert np.array_equal(normalize_images(torch.from_numpy(pixels), dataset).numpy(), ours)  # same bits
    black = dataset.background()
    assert np.allclose(black, [(0 - m) / s for m, s in zip(dataset.mean, dataset.std)])
    fashion = data.open_dataset()  # the notebook's (x/255 - 0.5)/0.5, bit for bit as before
    levels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    old = ((np.arange(256, dtype=np.float32) / np.float32(255.0)) - np.float32(0.5)) / np.float32(0.5)
    assert np.array_equal(fashion.normalize(levels).ravel(), old) and fashion.background() == (-1.0,)
    with pytest.raises(DataError, match="expected uint8 images"):
        dataset.normalize(pixels[:, :1])


def test_statistics_are_computed_from_the_images_when_none_are_published():
    pixels = np.random.default_rng(1).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    pixels[:, 2] = 7  # a blank channel: std 0 becomes 1, so normalising never divides by zero
    mean, std = channel_statistics(pixels)
    np.testing.assert_allclose(mean[:2], (pixels[:, :2] / 255).mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(std[:2], (pixels[:, :2] / 255).std(axis=(0, 2, 3)))
    assert std[2] == 1.0
    loaded, _ = data.load_dataset("digits")
    assert loaded.mean is not None and 0.2 < loaded.mean[0] < 0.4 and loaded.std[0] > 0.3


def test_one_size_and_colour_mode_as_pillow_makes_them():
    from PIL import Image

    rgb = np.random.default_rng(2).integers(0, 256, (4, 3, 10, 14), dtype=np.uint8)
    gray = conform.to_gray(rgb)
    for image, ours in zip(rgb, gray):
        pillow = np.asarray(Image.fromarray(image.transpose(1, 2, 0)).convert("L"))
        assert np.array_equal(ours[0], pillow)
    resized = conform.conform_images(rgb, (3, 7, 5))
    pillow = np.asarray(Image.fromarray(rgb[0].transpose(1, 2, 0)).resize((5, 7), Image.Resampling.BILINEAR))
    assert resized.shape == (4, 3, 7, 5) and np.array_equal(resized[0].transpose(1, 2, 0), pillow)
    assert conform.conform_images(gray, (3, 10, 14)).shape == (4, 3, 10, 14)
    small = data.open_dataset("cifar10", image_size=16, color="gray")
    assert small.input_shape == (1, 16, 16) and small.mean is None  # published statistics no longer apply
    assert data.open_dataset("cifar10", image_size=32, color="rgb") == data.open_dataset("cifar10")


def test_the_digits_need_no_download_and_keep_one_stratified_test_set():
    dataset, images = data.load_dataset("digits")
    assert images.train_images.shape == (1_437, 1, 8, 8) and images.test_images.shape == (360, 1, 8, 8)
    assert images.train_images.dtype == np.uint8 and images.train_images.max() == 255
    assert np.bincount(images.test_labels, minlength=10).min() >= 35  # a fifth of each class
    again = digits.DIGITS.read()
    assert np.array_equal(again.test_images, images.test_images)  # the same test set every time
    assert dataset.item_on_black and not dataset.flips
    assert data.get_source("digits").locate()[0] is None


# MNIST and KMNIST: Fashion-MNIST's reader with their own names, mirrors and checksums


@pytest.mark.parametrize("source", [idx_datasets.MNIST, idx_datasets.KMNIST])
def test_mnist_and_kmnist_read_their_idx_files_and_check_the_published_md5(source, tmp_path, monkeypatch):
    specs = write_synthetic_dataset(tmp_path, n_train=40, n_test=20)
    dataset, images = data.load_dataset(source.name, tmp_path)
    assert images.train_images.shape == (40, 1, 28, 28) and dataset.classes == source.dataset.classes
    # Files of the published shape must have the published MD5 (these have no published SHA-256).
    for key, spec in specs.items():
        monkeypatch.setitem(
            source.files, key, dataclasses.replace(source.files[key], gz_md5=spec.gz_md5, shape=spec.shape)
        )
    data.load_dataset(source.name, tmp_path)
    path = tmp_path / source.files["train_labels"].name
    path.write_bytes(
        gzip.compress(gzip.decompress(path.read_bytes()), mtime=99)
    )  # the same content, other bytes
    with pytest.raises(
        DataError, match=f"does not hold the published {source.name} content .its MD5 differs"
    ):
        data.load_dataset(source.name, tmp_path)


def test_each_dataset_has_its_own_place_in_the_cache(isolated_cache, tmp_path, monkeypatch):
    root = isolated_cache.parent
    write_synthetic_dataset(root / "mnist", n_train=30, n_test=10)
    assert idx_datasets.MNIST.locate() == (root / "mnist", f"the user cache directory {root / 'mnist'}")
    assert idx_datasets.KMNIST.locate()[0] is None and idx_datasets.FASHION_MNIST.locate()[0] is None
    monkeypatch.setenv(location.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"\$CNNLAB_DATA_DIR .* lacks kmnist's .*cnnlab data download kmnist"):
        idx_datasets.KMNIST.locate()


# CIFAR-10's python format


def test_cifar10_reads_the_folder_and_the_archive_alike(tmp_path):
    write_cifar_folder(tmp_path / "a", per_batch=20, test=30)
    archive, _ = write_cifar_archive(tmp_path / "b", per_batch=20, test=30)
    dataset, folder = data.load_dataset("cifar10", tmp_path / "a")
    _, packed = data.load_dataset("cifar10", tmp_path / "b")
    _, inside = data.load_dataset("cifar10", tmp_path / "a" / "cifar-10-batches-py")  # the folder itself
    assert folder.train_images.shape == (100, 3, 32, 32) and folder.test_images.shape == (30, 3, 32, 32)
    for part in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(folder, part), getattr(packed, part))
        assert np.array_equal(getattr(folder, part), getattr(inside, part))
    assert dataset.classes == tuple(CIFAR_CLASSES) and dataset.mean == (0.4914, 0.4822, 0.4465)
    # rows are the red, green and blue planes in turn
    raw = pickle.loads(cifar_files(per_batch=20, test=30)["data_batch_1"], encoding="bytes")
    assert np.array_equal(folder.train_images[0].ravel(), raw[b"data"][0])


def test_cifar10_class_names_come_from_batches_meta(tmp_path):
    root = write_cifar_folder(tmp_path, per_batch=10, test=10)
    meta = root / "cifar-10-batches-py" / "batches.meta"
    names = [f"class {k}".encode() for k in range(10)]
    meta.write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    dataset, _ = data.load_dataset("cifar10", root)
    assert dataset.classes == tuple(f"class {k}" for k in range(10))


def test_a_hostile_cifar_pickle_runs_no_code(tmp_path):
    root = write_cifar_folder(tmp_path, per_batch=10, test=10)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match="test_batch is not a CIFAR-10 python batch .*may not name"):
        data.load_dataset("cifar10", root)
    assert not marker.exists()


def test_a_damaged_or_altered_cifar_file_is_one_line(tmp_path, monkeypatch):
    root = write_cifar_folder(tmp_path, per_batch=10, test=10)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR-10 python batch"):
        data.load_dataset("cifar10", root)
    # A batch of the published size must have the published MD5.
    write_cifar_folder(tmp_path, per_batch=10, test=10)
    files = cifar_files(per_batch=10, test=10)
    monkeypatch.setattr(cifar, "PUBLISHED_BATCH", 10)
    monkeypatch.setattr(cifar, "MD5", {**{k: hashlib.md5(v).hexdigest() for k, v in files.items()}})
    data.load_dataset("cifar10", root)
    monkeypatch.setitem(cifar.MD5, "data_batch_2", "0" * 32)
    with pytest.raises(DataError, match="data_batch_2 does not hold the published CIFAR-10 content"):
        data.load_dataset("cifar10", root)
    archive = tmp_path / "c" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(DataError, match="not a readable .tar.gz"):
        data.load_dataset("cifar10", archive.parent)


# Downloads, from a real HTTP server on 127.0.0.1


@pytest.fixture
def mirror():
    """An HTTP server on 127.0.0.1 serving ``files`` (name -> bytes) at /data/."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            body = files.get(name)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/data/", files
    server.shutdown()


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_mnist_and_kmnist_download_with_their_checksums(name, mirror, tmp_path, monkeypatch):
    url, files = mirror
    source = data.get_source(name)
    made = tmp_path / "made"
    specs = write_synthetic_dataset(made, n_train=30, n_test=10)
    for spec in specs.values():
        files[spec.name] = (made / spec.name).read_bytes()
    for key, spec in specs.items():
        monkeypatch.setitem(source.files, key, dataclasses.replace(source.files[key], gz_md5=spec.gz_md5))
    target = tmp_path / "cache"
    source.download(target, mirrors=(url,), retries=1, timeout=5, quiet=True)
    dataset, images = data.load_dataset(name, target)
    assert images.train_images.shape == (30, 1, 28, 28) and dataset.name == name
    files[specs["test_labels"].name] = b"tampered"
    (target / specs["test_labels"].name).unlink()
    with pytest.raises(DataError, match="does not match the published"):
        source.download(target, mirrors=(url,), retries=1, timeout=5, quiet=True)


def test_cifar10_downloads_its_archive_and_reads_it_in_place(mirror, tmp_path, monkeypatch, capsys):
    url, files = mirror
    archive, md5 = write_cifar_archive(tmp_path / "made", per_batch=10, test=20)
    files[archive.name] = archive.read_bytes()
    monkeypatch.setattr(cifar, "ARCHIVE", dataclasses.replace(cifar.ARCHIVE, gz_md5=md5))
    target = tmp_path / "cache"
    assert (
        main(["data", "download", "cifar10", "--data-dir", str(target), "--mirror", url, "--retries", "1"])
        == 0
    )
    assert "cifar10 is in" in capsys.readouterr().out
    assert [p.name for p in target.iterdir()] == ["cifar-10-python.tar.gz"]  # never unpacked
    _, images = data.load_dataset("cifar10", target)
    assert images.test_images.shape == (20, 3, 32, 32)
    assert main(["data", "verify", "cifar10", "--data-dir", str(target)]) == 0
    assert "ok   cifar-10-python.tar.gz" in capsys.readouterr().out


def test_the_digits_cannot_be_downloaded_and_need_not_be(capsys):
    with pytest.raises(DataError, match="digits needs no download: bundled with scikit-learn"):
        main_raising(["data", "download", "digits"])
    assert main(["data", "where", "digits"]) == 0
    assert "bundled with scikit-learn" in capsys.readouterr().out


def main_raising(argv):
    from cnnlab.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_statistics_are_one_data_error_until_known():
    """``statistics()`` is the dataset's normalisation, never a None: before any images are read it
    refuses, as the normalisation itself does."""
    described = Dataset("tiny", ("a", "b"), (1, 4, 4), 10, 2)
    for use in (described.statistics, lambda: described.normalize(np.zeros((1, 1, 4, 4), np.uint8))):
        with pytest.raises(DataError, match="not known yet"):
            use()
    assert described.with_statistics((0.5,), (0.25,)).statistics() == ((0.5,), (0.25,))

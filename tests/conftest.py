import os
from pathlib import Path

import pytest

from cnnlab import data
from cnnlab.data import folder_cache, idx_datasets, location, verified
from tests.idx import write_synthetic_dataset

# Tests must never find the developer's own data by accident, nor write to their cache.
os.environ.pop(data.ENV_VAR, None)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def checksum_record(tmp_path_factory) -> Path:
    """The record of verified files, for every test and the processes they start: never the user's."""
    path = tmp_path_factory.mktemp("checksums") / "verified-files.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(verified.CACHE_VAR, str(path))
        yield path


@pytest.fixture(scope="session", autouse=True)
def folder_cache_dir(tmp_path_factory) -> Path:
    """The cache of decoded image folders, for every test and the processes they start: never the user's."""
    path = tmp_path_factory.mktemp("folder-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(folder_cache.CACHE_VAR, str(path))
        yield path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic dataset (600 train, 200 test images) in IDX format."""
    directory = tmp_path_factory.mktemp("synthetic-fmnist")
    write_synthetic_dataset(directory)
    return directory


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point the user cache and Debian's directory at empty temporary folders; returns where
    Fashion-MNIST's files go in that cache (each dataset has its own folder under the root)."""
    root = tmp_path / "cache"
    # Both are read at call time: location.cache_root by user_cache_dir, DEBIAN_DIR by the source.
    monkeypatch.setattr(location, "cache_root", lambda: root)
    monkeypatch.setattr(idx_datasets, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    return root / "fashion-mnist"


def real_data_dir() -> Path | None:
    directory, _ = data.FASHION_MNIST.locate() if not os.environ.get(data.ENV_VAR) else (None, "")
    return directory


REAL_DATA = real_data_dir()
requires_real_data = pytest.mark.skipif(
    REAL_DATA is None, reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(scope="session")
def trained_run(synthetic_dir, tmp_path_factory) -> Path:
    """A finished 1-epoch convnet run on the synthetic data; copy it before changing it."""
    from cnnlab.cli import main

    run = tmp_path_factory.mktemp("trained") / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "convnet",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(run),
                "--train-size",
                "400",
                "--valid-size",
                "100",
                "--batch-size",
                "50",
                "--epochs",
                "2",
                "--lr",
                "0.01",
                "--quiet",
            ]
        )
        == 0
    )
    return run


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory) -> Path:
    """A finished 3-epoch vgg-mini run on a folder of colour PNGs: 3x16x16, classes circle, square,
    triangle (``tests.datasets.write_image_folder``); copy it before changing it."""
    from cnnlab.cli import main
    from tests.datasets import write_image_folder

    root = tmp_path_factory.mktemp("colour")
    folder = write_image_folder(root / "shapes", per_class=20, size=(16, 16), split=True)
    run = root / "run"
    argv = ["train", "--dataset", str(folder), "--model", "vgg-mini", "--out", str(run), "--epochs", "3"]
    assert main([*argv, "--batch-size", "16", "--precision", "32", "--quiet"]) == 0
    return run


@pytest.fixture(scope="session")
def early_stopped_run(synthetic_dir, tmp_path_factory) -> tuple[Path, str]:
    """A run that early stopping ended after epoch 3 of 8 with epoch 1's weights as the best, so the
    best weights and the last ones differ in loss and accuracy; and what it printed. float32, so a
    fresh evaluation of either set of weights gives the recorded numbers exactly. Copy it to change it."""
    import contextlib
    import io

    from cnnlab.cli import main

    run = tmp_path_factory.mktemp("early-stopped") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "train",
                "--model",
                "convnet",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(run),
                "--train-size",
                "400",
                "--valid-size",
                "100",
                "--batch-size",
                "50",
                "--epochs",
                "8",
                "--patience",
                "2",
                # A constant, far too high rate: the validation loss rises after the first epoch.
                "--optimizer",
                "sgd",
                "--lr",
                "0.5",
                "--schedule",
                "constant",
                "--momentum",
                "0.9",
                "--precision",
                "32",
            ]
        )
    assert code == 0, printed.getvalue()
    return run, printed.getvalue()

import gzip

import numpy as np
import pytest

from cnnlab import data
from cnnlab.errors import DataError
from tests.idx import idx_bytes, write_idx, write_synthetic_dataset


def test_read_idx_round_trips_gzipped_and_raw(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a.gz", images)), images)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a", images, compress=False)), images)


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([1, -2, 300000], dtype=">i4")
    out = data.read_idx(write_idx(tmp_path / "i.gz", values))
    assert out.dtype == np.int32 and out.tolist() == [1, -2, 300000]


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b"\x01\x00" + b[2:], "magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "dtype code 0x07"),
        (lambda b: b[:-5], "truncated or corrupt"),
        (lambda b: b + b"\x00", "truncated or corrupt"),
        (lambda b: b[:6], "header needs"),
        (lambda b: b[:3], "only 3 bytes"),
        (lambda b: b[:3] + b"\x00", "0 dimensions"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, mangle, message):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(mangle(idx_bytes(np.zeros((3, 28, 28), np.uint8)))))
    with pytest.raises(DataError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_broken_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(DataError, match="corrupt gzip"):
        data.read_idx(path)


def test_load_arrays_validates_pairs(tmp_path):
    write_synthetic_dataset(tmp_path, n_train=50, n_test=20)
    write_idx(tmp_path / data.FILES["train_labels"].name, np.zeros(49, np.uint8))
    with pytest.raises(DataError, match="50 images but .* 49 labels"):
        data.load_arrays(tmp_path)
    write_idx(tmp_path / data.FILES["train_labels"].name, np.full(50, 10, np.uint8))
    with pytest.raises(DataError, match="label 10"):
        data.load_arrays(tmp_path)
    write_idx(tmp_path / data.FILES["train_labels"].name, np.zeros(50, np.uint8))
    write_idx(tmp_path / data.FILES["test_images"].name, np.zeros((20, 27, 28), np.uint8))
    with pytest.raises(DataError, match=r"shape \(20, 27, 28\)"):
        data.load_arrays(tmp_path)


def test_locate_order(tmp_path, isolated_cache, monkeypatch):
    assert data.locate() == (None, data.locate()[1])
    debian = tmp_path / "debian"
    write_synthetic_dataset(debian, 20, 10)
    assert data.locate()[0] == debian and "Debian" in data.locate()[1]
    write_synthetic_dataset(isolated_cache, 20, 10)
    assert data.locate()[0] == isolated_cache
    env_dir = tmp_path / "env"
    write_synthetic_dataset(env_dir, 20, 10)
    monkeypatch.setenv(data.ENV_VAR, str(env_dir))
    assert data.locate()[0] == env_dir
    explicit = tmp_path / "explicit"
    write_synthetic_dataset(explicit, 20, 10)
    assert data.locate(explicit) == (explicit, "given by --data-dir")


def test_explicit_dir_without_files_is_an_error(tmp_path, isolated_cache, monkeypatch):
    with pytest.raises(DataError, match="--data-dir .* lacks .*cnnlab data download --data-dir"):
        data.locate(tmp_path)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"\$CNNLAB_DATA_DIR"):
        data.locate()


def test_ensure_data_offline_message(isolated_cache):
    with pytest.raises(DataError, match="--data-dir"):
        data.ensure_data(download=False)


def test_verify_accepts_published_md5_or_content(tmp_path):
    specs = write_synthetic_dataset(tmp_path, 20, 10)
    spec = specs["train_labels"]
    path = tmp_path / spec.name
    assert data.verify_file(path, spec) == (True, "published MD5 of the .gz matches")
    # the same content re-gzipped with another header (as Debian ships it) still verifies
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=12345))
    assert data.verify_file(path, spec)[0] is True
    assert "re-gzipped" in data.verify_file(path, spec)[1]
    path.write_bytes(gzip.compress(b"something else"))
    assert data.verify_file(path, spec) == (
        False,
        "checksum mismatch: the file is corrupt or not Fashion-MNIST",
    )
    assert data.verify_file(tmp_path / "absent", spec) == (False, "missing")


def test_split_is_seeded_disjoint_and_sized():
    a = data.split_indices(10_000, 1_000, seed=3)
    b = data.split_indices(10_000, 1_000, seed=3)
    c = data.split_indices(10_000, 1_000, seed=4)
    assert len(a.train) == 10_000 and len(a.valid) == 1_000
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert not set(a.train) & set(a.valid)
    with pytest.raises(DataError, match="60000"):
        data.split_indices(59_500, 1_000, seed=0)
    with pytest.raises(DataError):
        data.split_indices(0, 10, seed=0)


def test_normalize_matches_the_notebook():
    images = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    x = data.normalize(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], [[-1, 1], [-0.6, 0.6]], atol=1e-6)


def test_class_names():
    assert data.CLASS_NAMES[0] == "T-shirt/top" and data.CLASS_NAMES[9] == "Ankle boot"
    assert len(data.CLASS_NAMES) == 10

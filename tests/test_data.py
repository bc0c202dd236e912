import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from cnnlab import data
from cnnlab.data import location
from cnnlab.errors import DataError
from tests.idx import corrupt_one_byte, idx_bytes, write_idx, write_synthetic_dataset

FM = data.FASHION_MNIST


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
    with pytest.raises(DataError, match="50 train images but 49 labels"):
        FM.read(tmp_path)
    write_idx(tmp_path / data.FILES["train_labels"].name, np.full(50, 10, np.uint8))
    with pytest.raises(DataError, match="label 10"):
        FM.read(tmp_path)
    write_idx(tmp_path / data.FILES["train_labels"].name, np.zeros(50, np.uint8))
    write_idx(tmp_path / data.FILES["test_images"].name, np.zeros((20, 27, 28), np.uint8))
    with pytest.raises(DataError, match=r"shape \(20, 27, 28\)"):
        FM.read(tmp_path)


def test_locate_order(tmp_path, isolated_cache, monkeypatch):
    assert FM.locate() == (None, FM.locate()[1])
    debian = tmp_path / "debian"
    write_synthetic_dataset(debian, 20, 10)
    assert FM.locate()[0] == debian and "system directory" in FM.locate()[1]
    write_synthetic_dataset(isolated_cache, 20, 10)
    assert FM.locate()[0] == isolated_cache
    env_dir = tmp_path / "env"
    write_synthetic_dataset(env_dir, 20, 10)
    monkeypatch.setenv(data.ENV_VAR, str(env_dir))
    assert FM.locate()[0] == env_dir
    explicit = tmp_path / "explicit"
    write_synthetic_dataset(explicit, 20, 10)
    assert FM.locate(explicit) == (explicit, "given by --data-dir")


def test_explicit_dir_without_files_is_an_error(tmp_path, isolated_cache, monkeypatch):
    with pytest.raises(
        DataError, match="--data-dir .* lacks .*cnnlab data download fashion-mnist --data-dir"
    ):
        FM.locate(tmp_path)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"\$CNNLAB_DATA_DIR"):
        FM.locate()


def test_ensure_data_offline_message(isolated_cache):
    with pytest.raises(DataError, match="--data-dir"):
        location.ensure(FM, download=False)


def test_verify_accepts_published_md5_or_content(tmp_path):
    specs = write_synthetic_dataset(tmp_path, 20, 10)
    spec = specs["train_labels"]
    path = tmp_path / spec.name
    assert data.verify_file(path, spec) == (True, "published MD5 matches")
    # the same content re-gzipped with another header (as Debian ships it) still verifies
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=12345))
    assert data.verify_file(path, spec)[0] is True
    assert "re-gzipped" in data.verify_file(path, spec)[1]
    path.write_bytes(gzip.compress(b"something else"))
    assert data.verify_file(path, spec) == (
        False,
        "checksum mismatch: the file is corrupt or not the dataset",
    )
    assert data.verify_file(tmp_path / "absent", spec) == (False, "missing")


def test_split_is_seeded_disjoint_and_sized():
    a = data.split_indices(10_000, 1_000, seed=3, total=60_000)
    b = data.split_indices(10_000, 1_000, seed=3, total=60_000)
    c = data.split_indices(10_000, 1_000, seed=4, total=60_000)
    assert len(a.train) == 10_000 and len(a.valid) == 1_000
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert not set(a.train) & set(a.valid)
    with pytest.raises(DataError, match="60000"):
        data.split_indices(59_500, 1_000, seed=0, total=60_000)
    with pytest.raises(DataError):
        data.split_indices(0, 10, seed=0, total=60_000)


def test_normalize_matches_the_notebook():
    images = np.array([[[[0, 255], [51, 204]]]], dtype=np.uint8)
    x = FM.dataset.normalize(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], [[-1, 1], [-0.6, 0.6]], atol=1e-6)


def test_class_names():
    assert data.CLASS_NAMES[0] == "T-shirt/top" and data.CLASS_NAMES[9] == "Ankle boot"
    assert len(data.CLASS_NAMES) == 10


# Checksums on every load (cnnlab.data.verified)


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A synthetic dataset made "published" (its checksums and shapes are data.FILES'), a record of
    verified files of its own, and the list of contents hashed so far."""
    from cnnlab.data import verified

    directory = tmp_path / "data"
    for key, spec in write_synthetic_dataset(directory).items():
        monkeypatch.setitem(data.FILES, key, spec)
    monkeypatch.setenv(verified.CACHE_VAR, str(tmp_path / "verified.json"))
    monkeypatch.setattr(verified, "SETTLED_NS", 0)  # the files were written a moment ago
    hashed = []
    real_hash = verified.content_sha256
    monkeypatch.setattr(
        verified, "content_sha256", lambda content: hashed.append(len(content)) or real_hash(content)
    )
    return directory, hashed


def test_a_corrupt_file_of_the_published_size_is_refused_on_first_load(published):
    directory, hashed = published
    corrupt_one_byte(directory / data.FILES["test_labels"].name)
    with pytest.raises(
        DataError, match="t10k-labels.* SHA-256 differs.*cnnlab data download fashion-mnist --data-dir"
    ):
        FM.read(directory)
    with pytest.raises(DataError, match="SHA-256 differs"):  # and on every load after it
        FM.read(directory)


def test_a_verified_file_is_not_hashed_again(published, tmp_path):
    directory, hashed = published
    first = FM.read(directory)
    assert len(hashed) == 4
    assert len(json.loads((tmp_path / "verified.json").read_text())["files"]) == 4
    again = FM.read(directory)
    assert len(hashed) == 4  # every file recorded: no hash
    assert np.array_equal(first.train_images, again.train_images)


def test_a_changed_file_is_verified_again(published):
    directory, hashed = published
    FM.read(directory)
    assert len(hashed) == 4
    path = directory / data.FILES["train_images"].name
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # touched: a new mtime, same bytes
    FM.read(directory)
    assert len(hashed) == 5  # hashed again, passed, recorded again
    FM.read(directory)
    assert len(hashed) == 5
    time.sleep(0.05)  # past the kernel's timestamp tick (SETTLED_NS is off here)
    corrupt_one_byte(path, keep_mtime=True)  # altered in place, its mtime set back: the ctime still moves
    with pytest.raises(DataError, match="SHA-256 differs"):
        FM.read(directory)
    assert len(hashed) == 6


@pytest.mark.parametrize("field", ["st_size", "st_mtime_ns", "st_ctime_ns", "st_ino", "st_dev"])
def test_a_file_that_differs_in_any_part_of_its_identity_is_hashed_again(published, monkeypatch, field):
    """On Linux a real change moves the ctime too; here the file seems changed in that one part alone."""
    import types

    from cnnlab.data import verified

    directory, hashed = published
    FM.read(directory)
    labels = (directory / data.FILES["train_labels"].name).resolve()

    class Changed:
        def __getattr__(self, name):
            return getattr(os, name)

        def stat(self, path):
            real = os.stat(path)
            seen = {name: getattr(real, name) for name in dir(real) if name.startswith("st_")}
            if Path(path).resolve() == labels:
                seen[field] += 1
            return types.SimpleNamespace(**seen)

    monkeypatch.setattr(verified, "os", Changed())
    FM.read(directory)
    assert len(hashed) == 5


def test_a_record_made_against_another_checksum_is_no_record(published, monkeypatch):
    directory, hashed = published
    FM.read(directory)
    spec = data.FILES["test_labels"]
    monkeypatch.setitem(
        data.FILES, "test_labels", data.DataFile(spec.name, spec.gz_md5, "0" * 64, spec.shape)
    )
    with pytest.raises(DataError, match="SHA-256 differs"):
        FM.read(directory)


def test_a_file_changed_while_it_is_read_is_not_recorded(published, monkeypatch):
    from cnnlab.data import verified

    directory, hashed = published
    real_open = verified.open_bytes

    def open_then_touch(path):
        content = real_open(path)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # the bytes hashed may be old ones
        return content

    monkeypatch.setattr(verified, "open_bytes", open_then_touch)
    FM.read(directory)
    monkeypatch.setattr(verified, "open_bytes", real_open)
    FM.read(directory)
    assert len(hashed) == 8


def test_a_file_changed_a_moment_ago_is_not_recorded_yet(published, monkeypatch):
    from cnnlab.data import verified

    monkeypatch.setattr(verified, "SETTLED_NS", 2 * 10**9)  # the real rule: the files are a moment old
    directory, hashed = published
    FM.read(directory)
    FM.read(directory)
    assert len(hashed) == 8  # a second write in the same timestamp tick would keep the identity


@pytest.mark.parametrize("record", ["under-a-file", "garbage"])
def test_an_unwritable_or_corrupt_record_never_fails_a_load(published, tmp_path, monkeypatch, record):
    from cnnlab.data import verified

    directory, hashed = published
    if record == "under-a-file":  # its directory cannot be made, even by root
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv(verified.CACHE_VAR, str(tmp_path / "a-file" / "verified.json"))
    else:
        (tmp_path / "verified.json").write_text('{"version": 1, "files": [[[')
    FM.read(directory)
    FM.read(directory)
    assert len(hashed) == 8  # each load hashes: garbage is not a record, and is left alone, never replaced
    if record == "garbage":
        assert (tmp_path / "verified.json").read_text() == '{"version": 1, "files": [[['

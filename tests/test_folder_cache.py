"""The cache of an image folder's decoded pixels: a second load decodes nothing and gives the same
pixels; any change to the images decodes again; a cache that is damaged, truncated, a directory, a
FIFO or unwritable costs a decode and one warning, never the load."""

import errno
import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from cnnlab import data
from cnnlab.data import folder, folder_cache
from cnnlab.errors import ImageError
from tests.datasets import write_image_folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory of this test's own, which takes files however new they are."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(folder_cache.CACHE_VAR, str(directory))
    monkeypatch.setattr(folder_cache, "SETTLED_NS", -(10**12))
    return directory


@pytest.fixture
def decodes(monkeypatch):
    """How many images were decoded since the test began."""
    count = [0]
    real = folder._decode

    def counted(*args):
        count[0] += 1
        return real(*args)

    monkeypatch.setattr(folder, "_decode", counted)
    return count


def load(root, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unexpected warning fails the test
        return data.load_dataset(str(root), **options)[1]


def uncached(root, monkeypatch, **options):
    with monkeypatch.context() as patch:
        patch.setenv(folder_cache.CACHE_VAR, os.devnull)
        return load(root, **options)


def same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, part), getattr(b, part))
        for part in ("train_images", "train_labels", "test_images", "test_labels")
    )


def test_a_second_load_decodes_nothing_and_gives_the_decoded_pixels(tmp_path, cache, decodes, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=5)
    first = load(root, image_size=12)
    assert decodes[0] == 15 and len(list(cache.glob("*.npz"))) == 1
    second = load(root, image_size=12)
    assert decodes[0] == 15  # all from the cache
    assert same(second, first) and same(second, uncached(root, monkeypatch, image_size=12))
    load(root, image_size=10, color="gray")  # another size and mode: a file of its own
    assert decodes[0] == 45 and len(list(cache.glob("*.npz"))) == 2


@pytest.mark.parametrize("change", ["rewritten", "added", "removed", "renamed"])
def test_any_change_to_the_images_decodes_the_folder_again(tmp_path, cache, decodes, monkeypatch, change):
    root = write_image_folder(tmp_path / "f", per_class=5, mode="L", suffix=".bmp")
    load(root)
    target = root / "circle" / "circle-002.bmp"
    if change == "rewritten":  # a BMP keeps its size in bytes; the mtime is set back: the ctime still tells
        stat = target.stat()
        Image.fromarray(255 - np.asarray(Image.open(target))).save(target)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    elif change == "added":
        Image.new("L", (16, 16), 99).save(root / "circle" / "zz-new.bmp")
    elif change == "removed":
        target.unlink()
    else:
        target.rename(root / "circle" / "circle-999.bmp")
    before = decodes[0]
    again = load(root)
    assert decodes[0] > before
    assert same(again, uncached(root, monkeypatch))


def test_a_folder_changed_moments_ago_is_not_cached_yet(tmp_path, cache, decodes, monkeypatch):
    monkeypatch.setattr(folder_cache, "SETTLED_NS", 10**12)  # as if every file had just been written
    root = write_image_folder(tmp_path / "f", per_class=3)
    load(root)
    load(root)
    assert decodes[0] == 18 and not list(cache.glob("*.npz"))


def _damage_pixels(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF  # inside the pixels: only the zip's CRC-32 can tell
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    "damage, said",
    [
        (_damage_pixels, "CRC"),
        (lambda p: p.write_bytes(p.read_bytes()[:-300]), "could not be used"),
        (lambda p: p.write_bytes(b"garbage" * 10), "could not be used"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * (100 * 1024)), "more than"),
    ],
    ids=["flipped byte", "truncated", "garbage", "oversized"],
)
def test_a_damaged_cache_is_decoded_again_and_written_anew(tmp_path, cache, decodes, damage, said):
    root = write_image_folder(tmp_path / "f", per_class=4)
    first = load(root)
    [path] = cache.glob("*.npz")
    damage(path)
    with pytest.warns(UserWarning, match=said):
        again = data.load_dataset(str(root))[1]
    assert same(again, first) and decodes[0] == 24
    load(root)  # the file was written anew: no warning, no decode
    assert decodes[0] == 24


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_at_the_cache_path_is_left_alone(tmp_path, cache, decodes, monkeypatch, kind):
    root = write_image_folder(tmp_path / "f", per_class=4)
    load(root)
    [path] = cache.glob("*.npz")
    path.unlink()
    if kind == "directory":
        path.mkdir()
        (path / "mine.txt").write_text("keep me")
    else:
        os.mkfifo(path)
    with pytest.warns(UserWarning, match=r"cannot be kept in .*(a directory|a FIFO)") as said:
        again = data.load_dataset(str(root))[1]
    assert len(said) == 1  # one line, though both the read and the write failed
    assert decodes[0] == 24 and same(again, uncached(root, monkeypatch))
    if kind == "directory":
        assert (path / "mine.txt").read_text() == "keep me"
    else:
        assert path.is_fifo()


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_load(tmp_path, cache, decodes, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=4)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(UserWarning, match="No space left on device.*CNNLAB_FOLDER_CACHE"):
        images = data.load_dataset(str(root))[1]
    assert images.train_images.shape == (9, 3, 16, 16)
    assert not list(cache.glob("*.npz")) and not list(
        cache.glob(".*.tmp")
    )  # nor a temporary file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_cache_directory_costs_a_warning_not_the_load(tmp_path, cache, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=4)
    cache.mkdir()
    cache.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="cannot be kept in"):
            images = data.load_dataset(str(root))[1]
    finally:
        cache.chmod(0o700)
    assert same(images, uncached(root, monkeypatch))


def test_a_cache_file_of_the_right_key_but_another_shape_or_type_is_not_used(tmp_path, cache, decodes):
    root = write_image_folder(tmp_path / "f", per_class=4)
    first = load(root)
    [path] = cache.glob("*.npz")
    key = np.load(path)["key"]
    every = np.concatenate([first.train_images, first.test_images])  # (12, 3, 16, 16)
    # as many bytes as the right pixels, so only the header can tell
    for pixels in (every[:6].astype(np.int16), np.asfortranarray(every)):
        np.savez(path, key=key, pixels=pixels)
        with pytest.warns(UserWarning, match=r"could not be used \(its pixels array is (int16|uint8)"):
            again = data.load_dataset(str(root))[1]
        assert same(again, first)
    assert decodes[0] == 36


def test_dev_null_turns_the_cache_off(tmp_path, cache, monkeypatch, decodes):
    root = write_image_folder(tmp_path / "f", per_class=3)
    uncached(root, monkeypatch)
    uncached(root, monkeypatch)
    assert decodes[0] == 18


def test_the_cache_lives_in_the_user_cache_unless_the_variable_says(monkeypatch, tmp_path):
    monkeypatch.delenv(folder_cache.CACHE_VAR)
    from cnnlab.data import location

    monkeypatch.setattr(location, "cache_root", lambda: tmp_path / "user")
    assert folder_cache.cache_dir() == tmp_path / "user" / "folders"
    monkeypatch.setenv(folder_cache.CACHE_VAR, str(tmp_path / "mine"))
    assert folder_cache.cache_dir() == tmp_path / "mine"


# The folder's headers (sizes, colour), kept beside the pixels so a second scan opens no image


@pytest.fixture
def headers(monkeypatch):
    """How many image headers were read since the test began; and no scan is kept in memory."""
    count = [0]
    real = folder._headers

    def counted(paths):
        count[0] += len(paths)
        return real(paths)

    monkeypatch.setattr(folder, "_headers", counted)
    folder._scan.cache_clear()
    return count


def scan(root) -> folder.Scan:
    """A scan of the folder as it is now, not one remembered by this process."""
    folder._scan.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return folder.scan(root)


def uncached_scan(root, monkeypatch) -> folder.Scan:
    with monkeypatch.context() as patch:
        patch.setenv(folder_cache.CACHE_VAR, os.devnull)
        return scan(root)


def assert_same_scan(found: folder.Scan, expected: folder.Scan) -> None:
    assert found == expected
    assert list(found.sizes.items()) == list(expected.sizes.items())  # most_common breaks ties by this order


def mixed_folder(root):
    """Gray images of three sizes, the rarer sizes as common as each other, and one in colour."""
    root = write_image_folder(root, per_class=5, mode="L")
    Image.new("L", (20, 12), 7).save(root / "circle" / "a-wide.png")
    Image.new("L", (9, 30), 7).save(root / "square" / "a-tall.png")
    Image.new("RGB", (9, 30), (1, 2, 3)).save(root / "triangle" / "b-colour.png")
    Image.new("L", (20, 12), 7).save(root / "triangle" / "c-wide.png")
    return root


def test_a_second_scan_reads_no_header_and_gives_the_same_scan(tmp_path, cache, headers, monkeypatch):
    root = mixed_folder(tmp_path / "f")
    first = scan(root)
    assert headers[0] == 19 and len(list(cache.glob("*.json"))) == 1
    second = scan(root)
    assert headers[0] == 19  # every header from the cache
    expected = uncached_scan(root, monkeypatch)
    assert headers[0] == 38
    assert_same_scan(first, expected)
    assert_same_scan(second, expected)
    assert expected.has_color and len(expected.sizes) == 3
    monkeypatch.setattr(folder, "_kept_headers", lambda root, paths: folder._headers(paths))
    assert_same_scan(second, scan(root))  # as the scan was before it had a cache
    assert list(second.sizes) != sorted(second.sizes)  # so the order is a test


@pytest.mark.parametrize("change", ["rewritten", "added", "removed"])
def test_any_change_to_the_images_reads_the_headers_again(tmp_path, cache, headers, monkeypatch, change):
    root = write_image_folder(tmp_path / "f", per_class=5, mode="L", suffix=".bmp")
    scan(root)
    target = root / "circle" / "circle-002.bmp"
    if change == "rewritten":  # same size in bytes and mtime, now in colour: only the ctime tells
        stat = target.stat()
        Image.fromarray(np.asarray(Image.open(target).convert("P"))).save(target)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    elif change == "added":
        Image.new("L", (20, 12), 99).save(root / "circle" / "zz-new.bmp")
    else:
        target.unlink()
    before = headers[0]
    again = scan(root)
    assert headers[0] > before
    assert_same_scan(again, uncached_scan(root, monkeypatch))


def _wrong_count(path):
    record = json.loads(path.read_text())
    record["value"]["sizes"][0][2] += 1
    path.write_text(json.dumps(record))


def _wrong_kind(path):
    path.write_text(json.dumps({**json.loads(path.read_text()), "value": [1]}))


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda p: p.write_text(p.read_text()[:-5]), "could not be used"),
        (lambda p: p.write_bytes(b"\xff" * 10), "could not be used"),
        (lambda p: p.write_text("[" * 60_000), "nested too deeply"),
        (_wrong_count, "does not hold the sizes of 15 images"),
        (
            lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "value": [1]})),
            "list of image sizes",
        ),
        (lambda p: p.write_bytes(b" " * (70 * 1024)), "more than"),
    ],
    ids=["truncated", "garbage", "deep", "wrong count", "wrong kind", "oversized"],
)
def test_a_damaged_header_record_is_read_again_with_one_warning(
    tmp_path, cache, headers, monkeypatch, damage, said
):
    root = write_image_folder(tmp_path / "f", per_class=5)
    first = scan(root)
    [path] = cache.glob("*.json")
    damage(path)
    folder._scan.cache_clear()
    with pytest.warns(UserWarning, match=said) as warned:
        again = folder.scan(root)
    assert len(warned) == 1 and "the image headers were read again" in str(warned[0].message)
    assert headers[0] == 30
    assert_same_scan(again, first)
    assert_same_scan(scan(root), first)  # the record was written anew: no warning, no header read
    assert headers[0] == 30


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_at_the_record_path_is_left_alone(tmp_path, cache, headers, monkeypatch, kind):
    root = write_image_folder(tmp_path / "f", per_class=4)
    first = scan(root)
    [path] = cache.glob("*.json")
    path.unlink()
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    folder._scan.cache_clear()
    with pytest.warns(UserWarning, match=r"image headers cannot be kept in .*(a directory|a FIFO)") as said:
        again = folder.scan(root)
    assert len(said) == 1 and headers[0] == 24
    assert_same_scan(again, first)
    assert path.is_dir() if kind == "directory" else path.is_fifo()


def test_a_header_record_that_cannot_be_written_costs_one_warning(tmp_path, cache, headers, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=4)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    folder._scan.cache_clear()
    with pytest.warns(UserWarning, match="image headers cannot be kept.*No space left on device") as said:
        found = folder.scan(root)
    assert len(said) == 1
    assert not list(cache.iterdir())  # nor a temporary file left behind
    monkeypatch.undo()
    assert_same_scan(found, uncached_scan(root, monkeypatch))


def test_headers_of_a_folder_changed_moments_ago_are_not_kept(tmp_path, cache, headers, monkeypatch):
    monkeypatch.setattr(folder_cache, "SETTLED_NS", 10**12)
    root = write_image_folder(tmp_path / "f", per_class=3)
    scan(root)
    scan(root)
    assert headers[0] == 18 and not cache.exists()


def test_dev_null_keeps_no_headers(tmp_path, cache, headers, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=3)
    uncached_scan(root, monkeypatch)
    uncached_scan(root, monkeypatch)
    assert headers[0] == 18 and not cache.exists()


def test_an_unreadable_image_is_named_and_nothing_is_kept(tmp_path, cache, headers):
    root = write_image_folder(tmp_path / "f", per_class=3)
    (root / "square" / "square-001.png").write_bytes(b"not a png")
    folder._scan.cache_clear()
    with pytest.raises(ImageError, match="square-001.png cannot be read"):
        folder.scan(root)
    assert not cache.exists()


def test_a_full_disk_is_said_once_though_a_load_keeps_two_files(tmp_path, cache, monkeypatch):
    """A load keeps the headers and the pixels: a cache directory that takes neither is one warning,
    and later loads in the same process say it no more."""
    root = write_image_folder(tmp_path / "f", per_class=4)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    folder._scan.cache_clear()
    with pytest.warns(UserWarning, match="cannot be kept in.*No space left on device") as said:
        images = data.load_dataset(str(root))[1]
    assert len(said) == 1
    folder._scan.cache_clear()
    again = load(root)  # any warning fails it
    monkeypatch.undo()
    assert same(images, again) and same(images, uncached(root, monkeypatch))

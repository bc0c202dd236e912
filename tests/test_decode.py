"""``cnnlab.data.decode``: one decoder for predict and the explorer, bounded in size, time and memory.

The budget's time and memory are measured by ``bench/decode_budget.py`` (no timings here); these
tests check what makes it hold: the output's size, the refusals before any pixel is decoded, the
JPEG draft, and the limit of two decodes at once.
"""

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from cnnlab.data import decode as decoding
from cnnlab.data.decode import MAX_SIDE, decode
from cnnlab.errors import ImageError


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """RGB: red grows to the right, green downwards; easy to compare after any resize."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 60)], 2).astype(np.uint8))


def test_small_images_come_back_pixel_for_pixel_in_either_mode():
    picture = gradient(40, 30)
    gray, rgb = decode(encoded(picture, "PNG"), "L"), decode(encoded(picture, "PNG"), "RGB")
    assert gray.dtype == rgb.dtype == np.float32 and gray.shape == (30, 40) and rgb.shape == (30, 40, 3)
    np.testing.assert_array_equal(rgb, np.asarray(picture, np.float32))
    np.testing.assert_array_equal(gray, np.asarray(picture.convert("L"), np.float32))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_images_are_bounded_and_keep_their_picture(fmt):
    picture = gradient(3000, 2000)
    out = decode(encoded(picture, fmt, quality=95) if fmt == "JPEG" else encoded(picture, fmt), "RGB")
    assert max(out.shape[:2]) <= MAX_SIDE and out.shape[1] / out.shape[0] == pytest.approx(1.5, rel=0.01)
    reference = np.asarray(picture.resize(out.shape[1::-1], Image.Resampling.BOX), np.float32)
    assert np.abs(out - reference).mean() < 3  # the same picture, within JPEG's noise


def test_a_jpeg_is_drafted_by_libjpeg_not_decoded_at_full_size(monkeypatch):
    seen = []
    original = ImageFile.ImageFile.load

    def load(self):
        seen.append(self.size)  # the size the decoder is asked for, after the draft
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    out = decode(encoded(gradient(4096, 2048), "JPEG"), "L")
    assert set(seen) == {(1024, 512)} and out.shape == (512, 1024)  # 1/4 scale in the decoder itself


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the camera was held on its side
    data = encoded(gradient(60, 40), "JPEG", exif=exif.tobytes(), quality=95)
    out = decode(data, "RGB")
    assert out.shape == (60, 40, 3)
    upright = np.asarray(gradient(60, 40).transpose(Image.Transpose.ROTATE_270), np.float32)
    assert np.abs(out - upright).mean() < 3


def test_a_phone_mpo_reads_as_its_first_frame():
    first, second = gradient(64, 48), Image.new("RGB", (64, 48), "white")
    data = encoded(first, "MPO", save_all=True, append_images=[second], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = decode(data, "RGB", formats=decoding.WEB_FORMATS)
    np.testing.assert_allclose(out, decode(encoded(first, "JPEG", quality=95), "RGB"), atol=0)


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: encoded(Image.fromarray(np.zeros((5000, 5000), np.uint16)), "PNG"), "25 megapixels"),
        (lambda: encoded(Image.new("L", (4200, 4200)), "JPEG", progressive=True), "18 megapixels"),
    ],
    ids=["16-bit PNG over the cap", "progressive JPEG over its cap"],
)
def test_over_the_budget_is_refused_before_any_pixel_is_decoded(monkeypatch, make, needle):
    data = make()
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1))
    with pytest.raises(ImageError, match=needle) as caught:
        decode(data, "L", name="the upload")
    assert "decompression bomb" in str(caught.value) and str(caught.value).startswith("the upload would")
    assert loads == []


def test_pillows_own_bomb_limit_gets_the_same_message():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    size = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # 400 megapixels of 8-bit gray
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", size) + chunk(b"IDAT", zlib.compress(b""))
    with pytest.raises(ImageError, match="the image declares over 179 megapixels; refused"):
        decode(data, "L")


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "is empty"),
        (b"hello, world", "not an image"),
        (encoded(Image.new("L", (4, 4)), "GIF"), "is a GIF image"),
        (encoded(Image.new("L", (64, 64)), "PNG")[:60], "damaged"),
    ],
    ids=["empty", "text", "GIF on the web", "truncated"],
)
def test_bad_files_get_one_clear_line(data, needle):
    with pytest.raises(ImageError, match=needle) as caught:
        decode(data, "L", formats=decoding.WEB_FORMATS, name="the upload")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("the upload")


def test_a_missing_path_and_a_bad_mode(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        decode(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        decode(tmp_path)
    with pytest.raises(ValueError, match="mode must be 'L' or 'RGB'. Received: mode='CMYK'"):
        decode(encoded(Image.new("L", (4, 4)), "PNG"), "CMYK")


def test_only_a_regular_file_is_opened_so_a_pipe_cannot_block(tmp_path):
    import os

    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    with pytest.raises(ImageError, match="is not a regular file"):
        decode(fifo)
    with pytest.raises(ImageError, match="is not a regular file"):
        decode("/dev/zero")


@pytest.mark.parametrize("width", [30000, 100000])
def test_a_one_pixel_stripe_decodes_small_and_prepares_small(width):
    """Issue 25: a 202-byte 30000x3 PNG once took 7.3 GB, padded to a 30000x30000 square."""
    from tests.datasets import to_fashion_mnist

    data = encoded(Image.new("L", (width, 3), 200), "PNG")
    assert len(data) < 1000
    gray = decode(data, "L")
    assert max(gray.shape) <= MAX_SIDE and gray.shape[0] == 1
    assert to_fashion_mnist(gray).image.shape == (28, 28)


def test_a_pil_image_is_read_without_being_changed():
    picture = gradient(2100, 30).convert("P")  # reduced by 3, the least whole factor to 1,024
    before = picture.tobytes()
    out = decode(picture, "RGB")
    assert out.shape == (10, 700, 3) and picture.tobytes() == before and picture.mode == "P"


def test_sixteen_bit_and_float_images_scale_by_their_range():
    sixteen = Image.fromarray(np.array([[0, 65535], [257, 32896]], np.uint16))
    np.testing.assert_allclose(decode(encoded(sixteen, "PNG"), "L"), [[0, 255], [1, 128]])
    dark = Image.fromarray(np.array([[0, 255]], np.uint16))  # 16 bits, however low the values
    np.testing.assert_allclose(decode(encoded(dark, "PNG"), "L"), [[0, 255 / 257]], rtol=1e-6)
    floats = Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.25]], np.float32))
    np.testing.assert_allclose(decode(floats, "L"), [[0, 255], [127.5, 63.75]])


def test_at_most_two_decodes_run_at_once(monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()
    original = decoding._bounded

    def slow(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)  # long enough for every thread to be waiting at once
        with lock:
            running[0] -= 1
        return original(*args, **kwargs)

    monkeypatch.setattr(decoding, "_bounded", slow)
    data = encoded(gradient(50, 50), "PNG")
    threads = [threading.Thread(target=decode, args=(data,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == decoding.MAX_CONCURRENT == 2
